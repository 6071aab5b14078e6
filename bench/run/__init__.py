"""One run of a matrix, in the order it happens: `matrix` expands the config into cells, `plan` groups them by
compressed model, `shards` picks this runner's share, `prepare` compresses, recovers and exports a group once,
`cells` measures each cell on its target, and `runner` drives it all, storing each record as it finishes
(`progress`, `scratch`, `fingerprint` serve it)."""
