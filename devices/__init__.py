"""Software that runs on the lab's emulated devices, inside their own
namespaces: the software gateway's election agent (gwagent) and the native
hardware VTEP (hwvtep). The controller never imports these; the lab starts
them on the nodes (topologies.boot)."""
