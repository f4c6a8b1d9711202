"""A native hardware VTEP (QFX5100-like) for the lab: an event-driven
device process that implements the `hardware_vtep` schema on Open vSwitch
bridges, replacing OVS's polling emulator (ovs-vtep) as the lab's default.

    pipeline  forwarding as data (pure): classify, learn, forward, egress
    macs      the learned-MAC table (pure): learn, move, age, flush
    report    what the switch writes back (pure)
    vtepdb    its hardware_vtep database (python ovs IDL)
    members   its members' Open_vSwitch databases (BFD tunnels, uplinks)
    ofmsg, ofconn  OpenFlow 1.3 with os-ken's message classes, one
              persistent connection per bridge
    device    the event loop that ties them together
See docs/hwvtep.md for how it maps to the whitepaper and to vtep(5).
"""
