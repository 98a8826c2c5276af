# satoru_add_plugin(NAME <name> SOURCES <files...> [TESTS <files...>]
#                   [TEST_LIBRARIES <libs...>])
#
# Builds libsatoru-plugin-<name>.so (underscores become dashes) linked to
# satoru::plugin, with hidden visibility so that only SATORU_PLUGIN's entry
# points are exported, into <build>/plugins (the folder `satoru plugins
# --plugin-dir` and tests can point at), and installs it into
# <prefix>/<libdir>/satoru/plugins. With TESTS, also a GoogleTest binary.
#
# The same file serves this repository's plugins (cmake/) and plugin
# authors (installed beside SatoruConfig.cmake by the SDK).
function(satoru_add_plugin)
  cmake_parse_arguments(arg "" "NAME" "SOURCES;TESTS;TEST_LIBRARIES" ${ARGN})
  if(NOT arg_NAME MATCHES "^[a-z0-9_]+$")
    message(FATAL_ERROR "satoru_add_plugin: NAME \"${arg_NAME}\" must be lower-case letters, "
      "digits and underscores")
  endif()
  if(NOT arg_SOURCES)
    message(FATAL_ERROR "satoru_add_plugin(NAME ${arg_NAME}): SOURCES is empty")
  endif()
  include(GNUInstallDirs)
  set(target satoru_plugin_${arg_NAME})
  add_library(${target} MODULE ${arg_SOURCES})
  string(REPLACE "_" "-" file_name "${arg_NAME}")
  set(output_dir "${SATORU_PLUGIN_BUILD_DIR}")
  if(NOT output_dir)
    set(output_dir "${CMAKE_BINARY_DIR}/plugins")
  endif()
  set_target_properties(${target} PROPERTIES
    PREFIX "lib"
    OUTPUT_NAME "satoru-plugin-${file_name}"
    LIBRARY_OUTPUT_DIRECTORY "${output_dir}"
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    # libsatoru-core is already loaded by satoru when it opens a plugin; the
    # RUNPATH lets tools (ldd, dpkg-shlibdeps) find it beside the plugins.
    INSTALL_RPATH "$ORIGIN/..")
  target_link_libraries(${target} PRIVATE satoru::plugin)
  # Relative, so that `cmake --install --prefix P` puts plugins under P like
  # everything else.
  install(TARGETS ${target} LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}/satoru/plugins"
    COMPONENT plugins)
  if(arg_TESTS AND (NOT DEFINED SATORU_BUILD_TESTS OR SATORU_BUILD_TESTS))
    if(NOT TARGET GTest::gtest_main)
      find_package(GTest REQUIRED)
    endif()
    include(GoogleTest)
    add_executable(${target}_tests ${arg_TESTS})
    target_link_libraries(${target}_tests PRIVATE satoru::core GTest::gtest_main
      ${SATORU_PLUGIN_TEST_LIBRARIES} ${arg_TEST_LIBRARIES})
    add_dependencies(${target}_tests ${target})
    gtest_discover_tests(${target}_tests
      PROPERTIES LABELS integration
      DISCOVERY_TIMEOUT 30)
  endif()
endfunction()
