"""Files read and written safely: bounded, located reads (`reading`), writes confined to a
folder and made atomic (`writing`), paths as addresses (`addresses`), YAML scanned in
linear time (`yaml_scanner`), and JSON Lines files a run appends to, read to their last
whole line after a kill inside an append (`json_lines`)."""
