"""Helper thread of policy_node: converts images for the model as they arrive.

Callbacks hand each buffered image to `offer` (cheap: one slot per stream, the
newest wins) and return; the thread calls `ObservationBuilder.prepare_image`, so
the tick's `build` finds the images converted (restac_ros/core/prepared.py) and
the conversion is off the sensor-to-chunk path. An image replaced before the
thread reached it is skipped: ticks use the newest image, and a miss only means
build() converts it itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class ImagePreparer:
    def __init__(self, prepare: Callable[[str, object], bool],
                 on_error: Callable[[BaseException], None], name: str = "image-preparer") -> None:
        self._prepare = prepare
        self._on_error = on_error
        self._cond = threading.Condition()
        self._slots: dict[str, object] = {}
        self._stopping = False
        self.prepared = 0
        self.skipped = 0  # replaced by a newer image before conversion
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def offer(self, stream: str, image: object) -> None:
        with self._cond:
            if stream in self._slots:
                self.skipped += 1
            self._slots[stream] = image
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._slots and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                stream, image = self._slots.popitem()
            # Bad images return False here; build() reports them with a reason code.
            try:
                if self._prepare(stream, image):
                    self.prepared += 1
            except Exception as exc:  # a bug, not bad input: handed to the node to report
                self._on_error(exc)

    def stop(self, timeout_s: float = 5.0) -> bool:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(timeout=timeout_s)
        return not self._thread.is_alive()
