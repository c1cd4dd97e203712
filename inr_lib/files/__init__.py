"""Everything the library reads from or writes to disk, and the rules that keep the user's
files safe: :mod:`.atomic` (atomic writes, SHA-256), :mod:`.outputs` (which paths may be
written), :mod:`.images` (the user's RGB images in, spectral cubes out), :mod:`.readers`
(the datasets' PNG, RGB and MAT files, exact to the bit) and :mod:`.checkpoints`."""
