"""The engine's watcher of its wake directory."""


def test_only_files_arriving_in_the_wake_directory_wake_the_loop():
    """Each marker makes seven inotify events (created, opened, closed, the folder modified,
    deleted when the loop clears it...): only the arrival wakes the loop, so that clearing
    the folder never causes another cycle."""
    import threading

    from watchdog.events import (
        DirModifiedEvent,
        FileClosedEvent,
        FileCreatedEvent,
        FileDeletedEvent,
        FileModifiedEvent,
        FileMovedEvent,
        FileOpenedEvent,
    )

    from hpcflow.daemon.service import wake_handler

    class Loop:
        def __init__(self) -> None:
            self._marker_seen = False
            self.woken = threading.Event()

        def wake(self) -> None:
            self.woken.set()

    loop = Loop()
    handler = wake_handler(loop)
    for event in (FileOpenedEvent("/h/wake/done-1"), FileClosedEvent("/h/wake/done-1"),
                  FileModifiedEvent("/h/wake/done-1"), DirModifiedEvent("/h/wake"),
                  FileDeletedEvent("/h/wake/done-1")):
        handler.dispatch(event)
    assert not loop.woken.is_set() and not loop._marker_seen
    handler.dispatch(FileCreatedEvent("/h/wake/req-abc"))
    assert loop.woken.is_set() and not loop._marker_seen
    handler.dispatch(FileMovedEvent("/h/wake/.tmp", "/h/wake/done-7"))
    assert loop._marker_seen
