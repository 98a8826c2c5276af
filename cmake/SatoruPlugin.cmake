# satoru_add_plugin(NAME <name> SOURCES <files...> [TESTS <files...>])
#
# Builds plugins/<name> into libsatoru-plugin-<name>.so in the shared plugin
# folder of the build tree (where `satoru` looks by default) and, when given,
# a GoogleTest binary for the plugin's own tests.
function(satoru_add_plugin)
  cmake_parse_arguments(arg "" "NAME" "SOURCES;TESTS;TEST_LIBRARIES" ${ARGN})
  set(target satoru_plugin_${arg_NAME})
  add_library(${target} MODULE ${arg_SOURCES})
  string(REPLACE "_" "-" file_name "${arg_NAME}")
  set_target_properties(${target} PROPERTIES
    PREFIX "lib"
    OUTPUT_NAME "satoru-plugin-${file_name}"
    LIBRARY_OUTPUT_DIRECTORY "${SATORU_PLUGIN_BUILD_DIR}"
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  target_link_libraries(${target} PRIVATE satoru::core)
  # Relative, so that `cmake --install --prefix P` puts plugins under P like
  # everything else (SATORU_PLUGIN_INSTALL_DIR is absolute: the configured
  # prefix, compiled into the binary as its default plugin folder).
  install(TARGETS ${target} LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}/satoru/plugins"
    COMPONENT plugins)
  if(arg_TESTS AND SATORU_BUILD_TESTS)
    add_executable(${target}_tests ${arg_TESTS})
    target_link_libraries(${target}_tests PRIVATE satoru::core satoru_test_support
      GTest::gtest_main ${arg_TEST_LIBRARIES})
    add_dependencies(${target}_tests ${target})
    gtest_discover_tests(${target}_tests
      PROPERTIES LABELS integration
      DISCOVERY_TIMEOUT 30)
  endif()
endfunction()
