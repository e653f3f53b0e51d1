import uuid

from alluse.store.outbox import uuid4_texts


def test_event_ids_are_distinct_version_4_uuids_in_their_usual_spelling() -> None:
    ids = uuid4_texts(500)
    assert len(set(ids)) == 500
    for text in ids:
        u = uuid.UUID(text)
        assert (u.version, u.variant, str(u)) == (4, uuid.RFC_4122, text)


def test_no_event_no_id() -> None:
    assert uuid4_texts(0) == []
