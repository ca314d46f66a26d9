"""Side-by-side benchmarks of emlab against its peers (scikit-learn for now).

Run ``python -m benchmarks`` (or ``make bench``); ``python -m benchmarks --help``
lists the options and ``benchmarks/README.md`` explains the methodology and
every number in the report.

Modules
-------
cases
    The grid: :class:`~benchmarks.cases.Case`, the targets and the useful-flop counts.
data
    The seeded data of a case and the starting parameters both libraries share.
peers
    One adapter per library (emlab, scikit-learn); adding a peer means adding
    an adapter and registering it in :data:`~benchmarks.peers.LIBRARIES`.
timing
    Seconds per iteration by differencing two iteration counts, and the
    comparison of the two libraries' trajectories.
machine
    Thread settings, machine description, GEMM rate and memory bandwidth.
memory
    Peak memory above the data, measured in a fresh worker process.
coldstart
    Import plus first fit in a fresh interpreter, with a warm and a cold Numba cache.
report
    Targets, the printed tables and the JSON file.
plot
    The figure the book chapter "How fast, and why" explains.
runner
    Puts the pieces together in one run.
"""
