"""Software L2 gateway election agent: runs on the gateway itself, so the
election works with the controller down (whitepaper, "Software Layer 2
Gateway / Redundancy"). election: the pure decisions; agent: the driver
(OVSDB IDL, OpenFlow, notices between gateways, no subprocess).

    python -m devices.gwagent --bridge br-seg1 --cable seg1 \
        --int-ofport 2 --segment seg1 --peer 198.18.0.11,198.19.64.5
(run inside the gateway's namespace, OVS_RUNDIR pointing at its OVS)
"""
