"""netpol-lab: topology, the kernel plumbing of the fabric.

- `model`: frozen plans (`TopologyPlan`, `FabricPlan`, `NodePlan`, `PodPlan`, `PortPlan`) and the
  `plan_fabric` / `plan_node` / `plan_pod` helpers that take every kernel name from `names`.
- `validation`: `check_plan` / `check_new_pods` raise `PlanError` listing every problem at once.
- `engine`: the `Engine` protocol and `NetnsEngine` (build, add_pods, remove_pods, destroy, list_owned; entered,
  call_in, start_in, run_in, exec_in: the only ways into a namespace); `engines`: engines by name.
- `responder` / `responder_ctl`: the per-lab process that makes pods answer on their declared ports.
- Internals: `batch` (ip -batch text), `rtnl` (raw rtnetlink), `plumbing` (what each namespace gets),
  `sysctl` (kernel settings), `netns` (setns in-process), `sockets` (netlink sockets per namespace).
"""
