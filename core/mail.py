"""The e-mail backend of `make run` (EMAIL_URL unset): one `.eml` file per message.

Django's file backend appends every message of a connection to one `.log` file; a `.eml` file
holds exactly one RFC 5322 message, so a user opens it in any mail program and sees what a
client would have received."""

import os
import uuid
from datetime import datetime

from django.core.mail.backends.filebased import EmailBackend as FileEmailBackend


class EmlFileBackend(FileEmailBackend):
    """Writes each message to `<EMAIL_FILE_PATH>/<timestamp>-<random>.eml`, atomically (a
    reader never sees half a message)."""

    def open(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def send_messages(self, email_messages) -> int:
        sent = 0
        for message in email_messages or ():
            try:
                self.write_message(message)
            except Exception:
                if not self.fail_silently:
                    raise
            else:
                sent += 1
        return sent

    def write_message(self, message) -> None:
        name = f"{datetime.now():%Y%m%d-%H%M%S-%f}-{uuid.uuid4().hex[:8]}.eml"
        path = os.path.join(self.file_path, name)
        partial = path + ".part"
        with open(partial, "wb") as out:
            out.write(message.message().as_bytes(linesep="\r\n"))
        os.replace(partial, path)
