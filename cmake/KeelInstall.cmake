# Install rules and the exported CMake package: find_package(keel CONFIG) then keel::<component>.
include(CMakePackageConfigHelpers)

get_property(components GLOBAL PROPERTY KEEL_COMPONENTS)
foreach(target IN LISTS components)
  get_target_property(headers ${target} KEEL_PUBLIC_HEADERS)
  get_target_property(umbrella ${target} KEEL_UMBRELLA_HEADER)
  string(REPLACE "keel_" "" name ${target})
  install(FILES ${headers} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/keel/${name})
  install(FILES ${umbrella} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/keel)
  get_target_property(internal_headers ${target} KEEL_INTERNAL_HEADERS)
  if(internal_headers)
    install(FILES ${internal_headers} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/keel/${name}/internal)
  endif()
endforeach()

install(TARGETS ${components} keel_keel
        EXPORT keelTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

set(config_dir ${CMAKE_INSTALL_LIBDIR}/cmake/keel)
install(EXPORT keelTargets NAMESPACE keel:: DESTINATION ${config_dir})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/keelConfig.cmake.in
  ${PROJECT_BINARY_DIR}/keelConfig.cmake INSTALL_DESTINATION ${config_dir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/keelConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/keelConfig.cmake ${PROJECT_BINARY_DIR}/keelConfigVersion.cmake
        DESTINATION ${config_dir})
