# What `cmake --install` puts beside the executables (host/ and firmware/
# install those into the export set qmcTargets): the M55 firmware image of
# the separate cross build, the docs, the CMake package (lib/cmake/qmc),
# and the CPack settings of the .deb (docs/cmake-package.md).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(QMC_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/qmc")
set(QMC_INSTALL_PROFILESDIR "${CMAKE_INSTALL_DATADIR}/qmc/profiles")
set(QMC_INSTALL_FIRMWAREDIR "${CMAKE_INSTALL_DATADIR}/qmc/firmware")

# The M55 image comes from the cross build (the m55 preset, its own
# configure): installed when that file exists at install time, so a host
# install or package never triggers an arm-none-eabi build.
set(QMC_INSTALL_M55_ELF "${PROJECT_SOURCE_DIR}/build/m55/firmware/qmc-fw-m55.elf"
    CACHE FILEPATH "the cross build's qmc-fw-m55.elf to install when it exists")
install(FILES "${QMC_INSTALL_M55_ELF}" DESTINATION "${QMC_INSTALL_FIRMWAREDIR}" OPTIONAL)

install(DIRECTORY "${PROJECT_SOURCE_DIR}/hal/profiles/" DESTINATION "${QMC_INSTALL_PROFILESDIR}")
install(FILES "${PROJECT_SOURCE_DIR}/README.md" DESTINATION "${CMAKE_INSTALL_DOCDIR}")
install(DIRECTORY "${PROJECT_SOURCE_DIR}/docs/" DESTINATION "${CMAKE_INSTALL_DOCDIR}")

install(EXPORT qmcTargets NAMESPACE qmc:: DESTINATION "${QMC_INSTALL_CMAKEDIR}")
configure_package_config_file("${CMAKE_CURRENT_LIST_DIR}/qmcConfig.cmake.in"
                              "${PROJECT_BINARY_DIR}/qmcConfig.cmake"
                              INSTALL_DESTINATION "${QMC_INSTALL_CMAKEDIR}"
                              PATH_VARS QMC_INSTALL_PROFILESDIR QMC_INSTALL_FIRMWAREDIR)
# 0.x: a minor release may break the CLI, so only the same minor matches.
write_basic_package_version_file("${PROJECT_BINARY_DIR}/qmcConfigVersion.cmake"
                                 COMPATIBILITY SameMinorVersion)
install(FILES "${PROJECT_BINARY_DIR}/qmcConfig.cmake" "${PROJECT_BINARY_DIR}/qmcConfigVersion.cmake"
              "${CMAKE_CURRENT_LIST_DIR}/QmcAddImage.cmake"
        DESTINATION "${QMC_INSTALL_CMAKEDIR}")

# `cpack -G DEB` in the build directory: qmc_<version>_<arch>.deb under /usr.
set(CPACK_PACKAGE_NAME qmc)
set(CPACK_PACKAGE_VENDOR "QMC project")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "QMC model images: pack, inspect, evaluate and flash quantized LLMs for MCU boards")
set(CPACK_PACKAGE_CONTACT "QMC maintainers <qmc@localhost>")
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CPACK_PACKAGE_CONTACT}")
set(CPACK_DEBIAN_PACKAGE_SECTION devel)
# The run-time libraries qmc links (zlib, libftdi1, libstdc++): read from the
# executables by dpkg-shlibdeps when it is installed, else named here.
find_program(QMC_DPKG_SHLIBDEPS dpkg-shlibdeps)
if(QMC_DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
else()
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "libc6, libstdc++6, libgcc-s1, zlib1g, libftdi1-2")
endif()
include(CPack)
