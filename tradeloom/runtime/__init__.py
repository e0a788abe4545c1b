"""Process-wide resources, set once per process: the C allocator (`memory`), native threads
(`threads`), the garbage collector's pace, stage timings, progress bars, lazily imported
libraries, optional extras, the secrets kept out of every line (`redaction`), the retry
policy of reads (`retrying`), and who hears of the exchanges' errors (`exchange_errors`)."""
