# Install rules: libqforge, the CLI, headers, the CMake package
# (find_package(qforge) → qforge::qforge, qforge::sdk, qforge_add_plugin) and
# qforge.pc with a pluginsdir variable.
include(CMakePackageConfigHelpers)
install(TARGETS qforge qforge_sdk EXPORT qforgeTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
if(TARGET qforge_cli)
  install(TARGETS qforge_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
install(DIRECTORY ${PROJECT_SOURCE_DIR}/sdk/include/qforge ${PROJECT_SOURCE_DIR}/core/include/qforge
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
set(QF_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/qforge)
install(EXPORT qforgeTargets NAMESPACE qforge:: DESTINATION ${QF_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/sdk/cmake/qforgeConfig.cmake.in
  ${CMAKE_BINARY_DIR}/qforgeConfig.cmake INSTALL_DESTINATION ${QF_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/qforgeConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_BINARY_DIR}/qforgeConfig.cmake ${CMAKE_BINARY_DIR}/qforgeConfigVersion.cmake
              ${PROJECT_SOURCE_DIR}/sdk/cmake/QforgeAddPlugin.cmake
        DESTINATION ${QF_CMAKE_DIR})
configure_file(${PROJECT_SOURCE_DIR}/sdk/cmake/qforge.pc.in ${CMAKE_BINARY_DIR}/qforge.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/qforge.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
