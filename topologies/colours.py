"""How each role is coloured wherever the lab is drawn: the topology PNG
and sequence diagrams (demos) and the web view (controllers/web)."""

ROLE_COLOURS = {'vm': '#8fd19e', 'bare_metal': '#f7b267',
                'hypervisor': '#7fb3e6', 'service_node': '#c3a6e0',
                'sw_gateway': '#f4d35e', 'hw_vtep': '#ee6c4d',
                'l2_segment': '#d9d9d9', 'spine': '#b0b0b0',
                'leaf': '#cfcfcf', 'vcf_spine': '#b0b0b0',
                'vcf_leaf': '#cfcfcf', 'appliance': '#ffffff'}
