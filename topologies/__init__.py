"""Lab topologies: specs as data (spec, builders, expand: pure) and the
Mininet realisation (nodes, lab)."""
