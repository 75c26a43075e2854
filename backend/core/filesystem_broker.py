"""make run's embedded broker: kombu's filesystem transport, each message written whole before it shows.

kombu creates a message's file in the queue folder, then writes it. A consumer polling the folder
(a worker, or a process waiting for control replies) could take the file in between, read it empty
and raise on the JSON: the worker died and the message was lost with it (seen on a Python-only
`make test`: "JSONDecodeError: Expecting value: line 1 column 1"). Here the message is written under
a name no consumer reads, in the same folder, and renamed into place: a rename within one folder is
atomic, so a consumer finds either no file or the whole message.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:
        """Put ``payload`` onto ``queue``: named as kombu names it, visible only once written."""
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # Consumers take "<stamp>.<queue>.msg"; a leading dot keeps the partial file out of every queue.
        partial = os.path.join(self.data_folder_out, f".{name}.part")
        try:
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.remove(partial)
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
