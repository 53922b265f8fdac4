# restac_ros: the two commands a newcomer needs are `make demo` and `make test`.
# Each creates .venv, installs the pinned dependencies, builds msg/ and installs
# the package, skipping every step whose inputs did not change.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMPS := $(VENV)/.restac

# Every run confines DDS to loopback with its own domain (see restac_ros/dds_env.py).
DDS_ENV = FASTDDS_DEFAULT_PROFILES_FILE=$(CURDIR)/config/fastdds_loopback.xml \
	ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST RMW_IMPLEMENTATION=rmw_fastrtps_cpp \
	ROS_DOMAIN_ID=$${ROS_DOMAIN_ID:-$$(( 20 + $$$$ % 180 ))} \
	JAX_PLATFORMS=$${JAX_PLATFORMS:-cpu}

.PHONY: setup demo-policy demo-touch-policy test demo demo-replay lint bench clean-venv

setup: $(STAMPS)/ament

$(STAMPS)/deps: requirements/lock.txt requirements/no-deps.txt scripts/install_system_deps.sh
	scripts/install_system_deps.sh
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements/lock.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -r requirements/no-deps.txt
	@mkdir -p $(STAMPS) && touch $@

# pip's editable install clears site-packages/restac_ros, so messages build after it.
$(STAMPS)/package: $(STAMPS)/deps setup.py package.xml
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation \
		-e . --config-settings editable_mode=compat
	@touch $@

$(STAMPS)/msgs: $(STAMPS)/package msg/ActionChunk.msg msg/TactileDiagnostics.msg CMakeLists.txt scripts/build_msgs.sh $(wildcard msg_deps/*/msg/*.msg)
	scripts/build_msgs.sh $(VENV)
	@touch $@

# The ament layout ros2 run / ros2 launch resolve (share/restac_ros/{launch,config},
# lib/restac_ros/<executables>, AMENT_PREFIX_PATH in .venv/bin/activate): the
# editable install leaves data_files and lib/<package>/ out.
$(STAMPS)/ament: $(STAMPS)/msgs scripts/install_ament_layout.py $(wildcard launch/*.launch.py config/*)
	$(PY) scripts/install_ament_layout.py $(VENV)
	@touch $@

# The demo's embedded policy: trained once from generated sample episodes and
# cached in .cache/demo_policy (retrained only when its config or code changes).
demo-policy: setup
	$(DDS_ENV) $(PY) -m restac_ros.eval.demo_checkpoint

# The touch demo's artifacts (make demo): restac_sim expert recordings -> a small Residual
# VQ-VAE -> a small Pi0_ResTac trained with it frozen, cached in .cache/demo_touch (each
# stage rebuilt only when its config or code changes). Not needed by make test.
demo-touch-policy: setup
	$(DDS_ENV) $(PY) -m restac_ros.eval.demo_touch

test: setup demo-policy
	$(PY) -m ruff check .
	$(DDS_ENV) $(PY) -m pytest -q $(PYTEST_ARGS)

# The touch demo: the sim-trained policy closed loop on held-out seeds (tactile on / zeroed).
demo: setup demo-touch-policy
	$(DDS_ENV) $(VENV)/bin/restac-demo $(DEMO_ARGS)

# The sample-bag replay demo over DDS (bag_player -> policy_node -> chunk_executor).
demo-replay: setup demo-policy
	$(DDS_ENV) $(VENV)/bin/restac-demo --replay $(DEMO_ARGS)

lint: setup
	$(PY) -m ruff check .

bench: setup demo-policy
	for b in model_latency vqvae_latency ros_overhead eval_speed; do \
		$(DDS_ENV) $(PY) bench/$$b.py || exit 1; done

clean-venv:
	rm -rf $(VENV) build
