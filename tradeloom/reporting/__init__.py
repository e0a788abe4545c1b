"""What a run did: metrics, statistics, the printed summary, the files of the run
directory, report.html and compare."""
