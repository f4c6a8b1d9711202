"""A service VM: the partner firewall a steering rule sends traffic
through (the vSRX of the whitepaper's "VMware NSX Integration with
Juniper vSRX Firewall"). A namespace on a hypervisor with two interfaces
on its br-int joined by a Linux bridge (a bump in the wire), filtered by
nftables (policy: the rules, the signature, the address sets), and a
management interface on which its agent follows the controller's security
groups (what Security Director's dynamic address groups do for a vSRX).

policy: the ruleset and its counters (pure); agent: the driver (long
poll of GET /security-groups/addresses, libnftables, no subprocess).

    python -m devices.servicevm --url https://198.18.0.1:8181/api/v1 \
        --ca CA.pem --policy '[{"name": "no-telnet", "protocol": "tcp",
        "port": 23, "destination": "web"}]' --log agent.log
(run inside the service VM's namespace; topologies/servicevm starts it)
"""
