"""netpol-lab: bgp. IPAM blocks, who peers with whom, ExaBGP speakers with route-installing agents, BIRD 2
route reflectors, and their status.

Pure: `ipam` (blocks, affinity, borrowing, records), `sessions` (session plans), `routes` (ExaBGP JSON to
route operations), `speaker.render_exabgp_config`, `bird.render_bird_config`.
Acting: `speaker` (start/stop ExaBGP, set announcements), `agent` (runs inside ExaBGP), `installer`
(kernel routes via pyroute2), `bird` (start/stop BIRD), `status` (read sessions and routes).
"""
