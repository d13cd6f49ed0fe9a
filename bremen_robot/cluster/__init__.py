"""A campaign over a robot fleet and a training workstation, on Ray (issue 17; docs/cluster.md).

* :mod:`.ray_env`: importing Ray, the resource a robot node offers, connecting a driver;
* :mod:`.join`: ``bremen robot join``, the checks a robot PC runs before it joins;
* :mod:`.node`: what runs on a robot node (receive, verify, collect, ingest);
* :mod:`.fleet`: the workstation side (split the budget, gather shards, record sessions).

Ray moves bytes and places work; it is never trusted with safety: a robot node verifies every
policy against its own robot config's trusted operator keys before anything runs.
"""
