"""Reading W&B's offline run files (``run-<id>.wandb``) back as the SDK's protobuf records, for tests.

The file is W&B's transaction log: a 7-byte header (``:W&B``, a magic number and a version), then 32 KiB blocks of
chunks, each with a 7-byte header (CRC-32, length, type: 1 full, 2 first, 3 middle, 4 last) before its bytes; a
record is the bytes of one full chunk or of a first..last run. The records are ``wandb_internal_pb2.Record``.
"""

import time
from pathlib import Path

BLOCK = 32 * 1024
HEADER = 7


def records(path):
    """Every record of an offline run file, in order."""
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    position, pending = HEADER, b""
    while position + HEADER <= len(data):
        left = BLOCK - position % BLOCK
        if left < HEADER:  # a block's tail too short for a chunk header is padding
            position += left
            continue
        length = int.from_bytes(data[position + 4 : position + 6], "little")
        kind = data[position + 6]
        if kind == 0 and length == 0:
            break
        pending += data[position + HEADER : position + HEADER + length]
        position += HEADER + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def run_files(run_dir):
    """The offline run files of a run folder, oldest first."""
    return sorted(Path(run_dir, "wandb").glob("offline-run-*/run-*.wandb"))


def finished_records(path, timeout=60.0):
    """Every record of a run file once W&B has written its last, the run's ``exit`` record. W&B's service process
    writes the file and may still be writing it when ``finish()`` returns: read before, the file ends early (no
    validation rows yet) or in a half-written chunk. After ``timeout`` seconds, what is there."""
    from google.protobuf.message import DecodeError

    deadline = time.monotonic() + timeout
    while True:
        try:
            found = list(records(path))
        except DecodeError:  # a chunk still being written
            found = []
        if any(r.WhichOneof("record_type") == "exit" for r in found) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def of_type(path, kind):
    """The records of one kind (``run``, ``history``, ``summary``, ``config``, ...) of a finished run file."""
    return [getattr(r, kind) for r in finished_records(path) if r.WhichOneof("record_type") == kind]
