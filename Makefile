# Packaging and man pages. Build outputs go to build/ (scratch) and dist/ (results);
# both are gitignored. See packaging/README.md.
#
#   make man              regenerate the generated sections of man/ and lint the pages
#   make deb              dist/sockactd_VERSION_all.deb (+ .dsc, .tar.xz, .changes); other
#                         versions' files in dist/ stay (install one: ./dist/sockactd_V_all.deb)
#   make rpm              dist/sockactd-VERSION-1.noarch.rpm
#   make check-packaging  man lint + both packages built and linted (CI: scripts/check-packaging)

VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' sockactd/__init__.py)
# pybuild and rpmbuild must use the system python3, never pyenv's or the venv's.
SYSPATH := /usr/sbin:/usr/bin:/sbin:/bin
PYTHON := $(if $(wildcard .venv/bin/python),.venv/bin/python,python3)
BUILD := build
DIST := dist
DEB_STAGE := $(BUILD)/deb/sockactd-$(VERSION)
RPM_TOP := $(abspath $(BUILD)/rpm)
RPM_SOURCE := $(RPM_TOP)/SOURCES/sockactd-$(VERSION).tar.gz

.PHONY: all man man-lint deb deb-lint rpm rpm-lint check-packaging clean-packaging stage

all: check-packaging

man:
	$(PYTHON) scripts/gen-man
	$(MAKE) man-lint

man-lint:
	$(PYTHON) scripts/gen-man --check
	mandoc -T lint -W warning man/*

# The working tree as it is (tracked and untracked files, minus gitignored ones), so a
# build never touches the checkout: no debian/ or egg-info left behind.
stage:
	rm -rf $(BUILD)/stage && mkdir -p $(BUILD)/stage/sockactd-$(VERSION)
	git ls-files -z -co --exclude-standard | \
		tar --null --ignore-failed-read -T - -cf - | tar -xf - -C $(BUILD)/stage/sockactd-$(VERSION)

deb: stage
	rm -rf $(BUILD)/deb && mkdir -p $(BUILD)/deb $(DIST)
	cp -a $(BUILD)/stage/sockactd-$(VERSION) $(DEB_STAGE)
	cp -a packaging/debian $(DEB_STAGE)/debian
	cd $(DEB_STAGE) && env PATH=$(SYSPATH) dpkg-buildpackage -us -uc
	rm -f $(DIST)/sockactd_$(VERSION)_* $(DIST)/sockactd_$(VERSION).*
	cp $(BUILD)/deb/sockactd_$(VERSION)* $(DIST)/

deb-lint:
	lintian --fail-on warning,pedantic -EIL +pedantic --display-experimental \
		$(DIST)/sockactd_$(VERSION)_*.changes

rpm: stage
	rm -rf $(RPM_TOP) && mkdir -p $(RPM_TOP)/SOURCES $(DIST)
	tar -C $(BUILD)/stage -czf $(RPM_SOURCE) sockactd-$(VERSION)
	cp packaging/debian/sockactd.sysusers $(RPM_TOP)/SOURCES/
	env PATH=$(SYSPATH) rpmbuild --define "_topdir $(RPM_TOP)" \
		--load packaging/rpm/macros.debian-compat \
		--define "_debian_compat_dir $(abspath packaging/rpm)" --nodeps -bb packaging/rpm/sockactd.spec
	rm -f $(DIST)/sockactd-$(VERSION)-*.rpm
	cp $(RPM_TOP)/RPMS/noarch/sockactd-$(VERSION)-*.rpm $(DIST)/

# rpmlint exits 0 on warnings: fail on any ": W: " or ": E: " line ourselves.
rpm-lint:
	out=$$(env PATH=$(SYSPATH) rpmlint -c packaging/rpm/rpmlint.toml \
		packaging/rpm/sockactd.spec $(DIST)/sockactd-$(VERSION)-*.rpm 2>&1); rc=$$?; \
	echo "$$out"; [ $$rc -eq 0 ] && ! echo "$$out" | grep -q ': [EW]: '

check-packaging: man-lint deb deb-lint rpm rpm-lint

clean-packaging:
	rm -rf $(BUILD)/stage $(BUILD)/deb $(BUILD)/rpm $(DIST)/sockactd_* $(DIST)/sockactd-*
