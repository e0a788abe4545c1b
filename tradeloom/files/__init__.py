"""Files read and written safely: bounded, located reads (`reading`), writes confined to a
folder and made atomic (`writing`), paths as addresses (`addresses`), and YAML scanned in
linear time (`yaml_scanner`)."""
