# qf_add_test(NAME <name> SOURCES <c files…> [LIBS <libs…>] [ENV <VAR=value…>]
#             [PLUGINS <plugin targets…>] [LABELS <labels…>])
#
# One Criterion executable per suite, registered with ctest. Tests run from
# the source root; QF_GOLDEN_DIR points at ../shared/golden, QF_BUILD_DIR at
# the build tree, QF_PLUGIN_DIR at the built plugins and QFORGE_REGISTRY at
# the generated build-tree registry.
include_guard(GLOBAL)

function(qf_add_test)
  cmake_parse_arguments(T "" "NAME" "SOURCES;LIBS;ENV;PLUGINS;LABELS" ${ARGN})
  if(NOT QF_BUILD_TESTS)
    return()
  endif()
  set(_exe t_${T_NAME})
  add_executable(${_exe} ${T_SOURCES})
  target_link_libraries(${_exe} PRIVATE PkgConfig::CRITERION m qforge::sdk ${T_LIBS})
  target_include_directories(${_exe} PRIVATE ${PROJECT_SOURCE_DIR}/tests/common)
  set_target_properties(${_exe} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  add_test(NAME ${T_NAME} COMMAND ${_exe} --jobs=2 --short-filename
           WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set(_env
    "QF_GOLDEN_DIR=${PROJECT_SOURCE_DIR}/../shared/golden"
    "QF_SOURCE_DIR=${PROJECT_SOURCE_DIR}"
    "QF_BUILD_DIR=${CMAKE_BINARY_DIR}"
    "QF_PLUGIN_DIR=${QF_PLUGIN_OUTPUT_DIR}"
    "QFORGE_REGISTRY=${CMAKE_BINARY_DIR}/${QF_REGISTRY_SUBDIR}/registry.yaml"
    "QF_CLI=${CMAKE_BINARY_DIR}/${CMAKE_INSTALL_BINDIR}/qforge"
    ${T_ENV})
  set_tests_properties(${T_NAME} PROPERTIES ENVIRONMENT "${_env}")
  if(T_LABELS)
    set_tests_properties(${T_NAME} PROPERTIES LABELS "${T_LABELS}")
  endif()
  foreach(_p ${T_PLUGINS})
    if(TARGET ${_p})
      add_dependencies(${_exe} ${_p})
    endif()
  endforeach()
endfunction()
