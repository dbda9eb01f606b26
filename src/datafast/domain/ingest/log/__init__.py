"""The durable log between capture and processing: the embedded spool and the scaled stream."""
