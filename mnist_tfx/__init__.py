"""`mnist-tfx`: the command line, the local runner and what a person reads after a run.

Depends on the pipeline (`pipeline/`), its components and the runners; nothing in those imports
this package.
"""
