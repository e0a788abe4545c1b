"""What a run reports: metrics, the printed summary, the files of the run directory."""
