"""restac-serve: the policy behind openpi's websocket protocol (ROS-free).

protocol (msgpack-numpy under limits), requests (observation keys -> RawSample),
engine (core builder + batched RestacPolicy), batcher, session (per-client protocol
state), server (websockets front end), cli (`restac-serve`), ray_app (Ray Serve
deployment), client (the remote backend's connection).
"""
