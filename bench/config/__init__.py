"""From a TOML matrix file and command-line flags to one frozen, validated `RunConfig` (`run_config`).

Everything a user can get wrong is checked here, once (`checks`), with one line naming the field and the value;
nothing downstream reads argparse or the environment. `shards` holds the `--shard K/N` type, `studies` finds the
matrix files of `studies/`.
"""
