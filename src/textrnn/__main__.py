import sys

from .cli import main

status = main()
if "textrnn.training.distributed" in sys.modules:  # this process may be one of a distributed run's
    from .training.distributed import end_process

    end_process(status)
sys.exit(status)
