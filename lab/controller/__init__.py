"""The lab's controller: one resident process per lab that keeps the kernel equal to the store.

Like Felix, it holds the world and the compiled per-host programs in memory, and on every change and on a
resync timer compares what should be (the store) with what is (namespaces, links, routes, processes, the
nftables generation of every host) and repairs the difference. Modules, one job each:

    state.py      the data: desired, observed, the process table, the actions (pure)
    plan.py       plan(desired, observed) -> actions (pure, unit-tested without root)
    desired.py    the desired state, read from the store
    observe.py    the observed state, read from the kernel and /proc
    act.py        carries actions out (the only module here that changes the kernel)
    events.py     every repair, appended to a JSON-lines file in the run directory
    protocol.py   the Unix socket: newline-delimited JSON requests and answers
    daemon.py     the loop: observe, plan, act, answer requests
    launcher.py   start, stop and find the controller of a lab (used by the CLI)
"""
