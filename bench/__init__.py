"""JobJoker's benchmark suite (issue 7): ``bench/run`` measures six cases against real server
processes, each beside its baselines from the same run. See docs/performance.md."""
