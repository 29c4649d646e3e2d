# Two commands on a fresh Debian machine: `make run` and `make test`. Both install what is missing.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Debian packages the real-peer tests and benchmarks need (DESIGN.md §6).
DEB_PACKAGES := dcmtk python3-hl7 socat openssl hyperfine iproute2 procps gcc orthanc orthanc-dicomweb \
  swtpm swtpm-tools tpm2-tools libtss2-tcti-swtpm0 rsyslog rsyslog-gnutls nftables chromium prometheus libnss3-tools
DEV_SITE ?= .dev-site
BASE_PORT ?= 12575
NPM_STAMP := node_modules/.install-stamp
# The appliance image build and its boot tests (image/README.md).
IMAGE_DEB_PACKAGES := mmdebstrap squashfs-tools cryptsetup-bin qemu-system-x86 ovmf sbsigntool mtools dosfstools \
  fdisk systemd-boot-efi binutils swtpm swtpm-tools tpm2-tools openssl bc dcmtk python3-hl7
IMAGE_OUT ?= .image

.PHONY: help deps deb-deps npm-deps run test check typecheck lint format format-check check-imports unit bench dev-site clean \
  image image-deps image-test

help:
	@echo "make run    start the box on a development site in $(DEV_SITE) (installs what is missing)"
	@echo "make test   type-check, lint, import check, unit and integration tests against real peers"
	@echo "make bench  benchmarks side by side with the DCMTK anchors"
	@echo "make image       the appliance disk image in $(IMAGE_OUT)/ (root; Debian packages in IMAGE_DEB_PACKAGES)"
	@echo "make image-test  boots the image under QEMU + swtpm + OVMF Secure Boot (about 15 min)"

deps: deb-deps npm-deps

deb-deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; \
	fi

npm-deps: $(NPM_STAMP)

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

$(DEV_SITE)/edge.json: | npm-deps
	bin/edgectl dev-site --dir $(DEV_SITE) --base-port $(BASE_PORT)

dev-site: $(DEV_SITE)/edge.json

run: deps dev-site
	@bin/edgectl dev-account --dir $(DEV_SITE)
	@bin/edgectl site-info --dir $(DEV_SITE)
	bin/edged --config $(DEV_SITE)/edge.json

typecheck: npm-deps
	npx tsc --noEmit -p tsconfig.json

lint: npm-deps
	npx eslint .

# prettier formats the TypeScript and JavaScript (.prettierrc.json); `make format` rewrites, the check fails
# on any file it would change.
format: npm-deps
	npx prettier --write --log-level warn "**/*.{ts,js}"

format-check: npm-deps
	npx prettier --check --log-level warn "**/*.{ts,js}"

check-imports: npm-deps
	npx node test/tools/check-imports.ts

check: typecheck lint format-check check-imports

unit: deps
	npx ava

test: deps check unit

bench: deps
	bash bench/run.sh

image-deps:
	@$(MAKE) --no-print-directory deb-deps DEB_PACKAGES="$(IMAGE_DEB_PACKAGES)"

image: image-deps npm-deps
	image/build.sh --out $(IMAGE_OUT)

# Builds the image first when there is none (a clean clone); `make image` rebuilds it.
$(IMAGE_OUT)/disk.img:
	$(MAKE) --no-print-directory image

image-test: image-deps npm-deps $(IMAGE_OUT)/disk.img
	IMAGE_OUT=$(abspath $(IMAGE_OUT)) npx ava --config ava-image.config.js

clean:
	rm -rf $(DEV_SITE) .bench
