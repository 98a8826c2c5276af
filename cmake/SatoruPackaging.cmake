# Debian packages made by CPack from this build tree (docs/packaging.md):
#   cmake --build build --target package     (or: cd build && cpack)
# gives build/packages/satoru_<version>-1_<arch>.deb (the program, plugins,
# service files) and satoru-dev_<version>-1_<arch>.deb (the plugin SDK).
# Paths are the install paths of the build, so configure with
# -DCMAKE_INSTALL_PREFIX=/usr (the default of a new build tree).

if(NOT CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  message(STATUS "satoru: CMAKE_INSTALL_PREFIX is ${CMAKE_INSTALL_PREFIX}; the Debian "
    "package needs /usr (cmake -DCMAKE_INSTALL_PREFIX=/usr)")
endif()

set(SATORU_PACKAGE_MAINTAINER "Satoru maintainers <satoru@example.org>"
  CACHE STRING "Maintainer field of the Debian packages")
set(SATORU_PACKAGE_RELEASE 1 CACHE STRING "Debian revision of the packages")
set(satoru_deb_version "${PROJECT_VERSION}-${SATORU_PACKAGE_RELEASE}")

# Documentation of both packages: copyright and a changelog (Debian requires
# both); the satoru package also carries README and docs/.
set(doc_stage "${CMAKE_BINARY_DIR}/packaging")
file(MAKE_DIRECTORY "${doc_stage}")
string(TIMESTAMP changelog_date "%a, %d %b %Y %H:%M:%S +0000" UTC)
foreach(package satoru satoru-dev)
  file(MAKE_DIRECTORY "${doc_stage}/${package}")
  file(WRITE "${doc_stage}/${package}.changelog"
    "${package} (${satoru_deb_version}) unstable; urgency=medium\n\n"
    "  * Built by CPack from the satoru source tree.\n\n"
    " -- ${SATORU_PACKAGE_MAINTAINER}  ${changelog_date}\n")
  execute_process(COMMAND gzip -9nc "${doc_stage}/${package}.changelog"
    OUTPUT_FILE "${doc_stage}/${package}/changelog.Debian.gz")
endforeach()
install(FILES "${doc_stage}/satoru/changelog.Debian.gz" packaging/debian/copyright
  DESTINATION "${CMAKE_INSTALL_DATAROOTDIR}/doc/satoru" COMPONENT service)
install(FILES README.md DESTINATION "${CMAKE_INSTALL_DATAROOTDIR}/doc/satoru"
  COMPONENT service)
install(DIRECTORY docs/ DESTINATION "${CMAKE_INSTALL_DATAROOTDIR}/doc/satoru/docs"
  COMPONENT service FILES_MATCHING PATTERN "*.md")
install(FILES "${doc_stage}/satoru-dev/changelog.Debian.gz" packaging/debian/copyright
  DESTINATION "${CMAKE_INSTALL_DATAROOTDIR}/doc/satoru-dev" COMPONENT dev)

# Every file under /etc is a conffile: the operator's edits survive upgrades.
file(WRITE "${doc_stage}/conffiles"
  "${CMAKE_INSTALL_FULL_SYSCONFDIR}/satoru/satoru.example.json\n"
  "${CMAKE_INSTALL_FULL_SYSCONFDIR}/satoru/satoru.schema.json\n")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME satoru)
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_DIRECTORY "${CMAKE_BINARY_DIR}/packages")
set(CPACK_PACKAGE_CONTACT "${SATORU_PACKAGE_MAINTAINER}")
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE "${SATORU_PACKAGE_RELEASE}")
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_GROUPING ONE_PER_GROUP)
set(CPACK_COMPONENTS_ALL runtime plugins service dev)
foreach(component runtime plugins service)
  string(TOUPPER ${component} c)
  set(CPACK_COMPONENT_${c}_GROUP satoru)
endforeach()
set(CPACK_COMPONENT_DEV_GROUP dev)

# satoru: the program, its private libraries, the plugins, the service.
set(CPACK_DEBIAN_SATORU_PACKAGE_NAME satoru)
set(CPACK_DEBIAN_SATORU_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_SATORU_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS "${SATORU_PRIVATE_LIBDIR}")
# Tools it runs: restic (snapshots), rsync + ssh (pulls), sqlite3 (checks of
# SQLite copies); gzip is essential. curl removes dead locks on rest: remotes.
set(CPACK_DEBIAN_SATORU_PACKAGE_DEPENDS "restic, rsync, openssh-client, sqlite3")
set(CPACK_DEBIAN_SATORU_PACKAGE_RECOMMENDS "curl")
# pg_restore checks the dumps of postgres_dump targets.
set(CPACK_DEBIAN_SATORU_PACKAGE_SUGGESTS "postgresql-client")
set(CPACK_DEBIAN_SATORU_DESCRIPTION
  "pull-model backup orchestrator for fleets of edge hosts\n"
  "Satoru reaches edge hosts over SSH with pinned host keys, pulls folders\n"
  "(rsync) and SQLite databases (consistent online copies) into a staging\n"
  "area, snapshots them into a local restic repository, applies retention\n"
  "and copies the repository off-site (Backblaze B2 or any restic\n"
  "repository). Jobs live in a SQLite queue; Prometheus metrics and a\n"
  "hardened systemd unit are included.")
string(REPLACE ";" "" CPACK_DEBIAN_SATORU_DESCRIPTION "${CPACK_DEBIAN_SATORU_DESCRIPTION}")
set(CPACK_DEBIAN_SATORU_PACKAGE_CONTROL_EXTRA
  "${PROJECT_SOURCE_DIR}/packaging/debian/postinst"
  "${PROJECT_SOURCE_DIR}/packaging/debian/prerm"
  "${PROJECT_SOURCE_DIR}/packaging/debian/postrm"
  "${doc_stage}/conffiles")

# satoru-dev: the plugin SDK (headers, SatoruConfig.cmake, satoru_add_plugin).
set(CPACK_DEBIAN_DEV_PACKAGE_NAME satoru-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
  "satoru (= ${satoru_deb_version}), libboost-json${Boost_VERSION_MAJOR}.${Boost_VERSION_MINOR}-dev, libboost${Boost_VERSION_MAJOR}.${Boost_VERSION_MINOR}-dev, libfmt-dev, prometheus-cpp-dev, cmake (>= 3.25)")
set(CPACK_DEBIAN_DEV_DESCRIPTION
  "plugin SDK for the satoru backup orchestrator\n"
  "Headers, the CMake package (find_package(Satoru): satoru::plugin and\n"
  "satoru_add_plugin) and the link library to build target-mode plugins\n"
  "that the satoru of the same version loads.")
string(REPLACE ";" "" CPACK_DEBIAN_DEV_DESCRIPTION "${CPACK_DEBIAN_DEV_DESCRIPTION}")

include(CPack)
