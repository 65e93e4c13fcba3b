"""`lab bench`: the bank world built once per dataplane, every headline figure side by side with iptables.

figures.py (pure): the figures, their ratios to the baseline, how a value is shown; measure modules touch the
kernel (bringup, programming, latency, cost, verify); run.py drives them per dataplane; table.py and report.py
show a result (terminal table, self-contained HTML page with plots).
"""
