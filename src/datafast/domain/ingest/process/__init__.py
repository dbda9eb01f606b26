"""Processing: a batch of captured requests becomes ClickHouse rows (see ``processor``)."""

from datafast.domain.ingest.process.processor import Processed, Processor, RealtimeEvent, SessionContention

__all__ = ("Processed", "Processor", "RealtimeEvent", "SessionContention")
