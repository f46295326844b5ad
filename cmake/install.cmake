# `make install` (cmake --install): the layout an operator and a Debian package expect.
# GNUInstallDirs paths, DESTDIR honoured. Installs the three programs, keyward.so into OpenSSL's
# module directory (so openssl.cnf may leave out `module =`), libkeyward.so.N with its public
# headers and keyward.pc, the man pages, the example configs, the scripts `keyward keygen` and
# `keyward demo` run, and the systemd units.
include(GNUInstallDirs)

# OpenSSL's module directory, found when configuring: `openssl version -m` (what OpenSSL itself
# searches), else libcrypto.pc's modulesdir, else LIBDIR/ossl-modules. -DKW_OSSL_MODULESDIR=...
# overrides (a staged or cross build).
set(KW_OSSL_MODULESDIR "" CACHE PATH "Where keyward.so is installed (default: openssl version -m)")
if(NOT KW_OSSL_MODULESDIR)
  find_program(KW_OPENSSL_PROGRAM openssl)
  if(KW_OPENSSL_PROGRAM)
    execute_process(COMMAND ${KW_OPENSSL_PROGRAM} version -m OUTPUT_VARIABLE kw_ossl_m
                    RESULT_VARIABLE kw_ossl_rc ERROR_QUIET)
    if(kw_ossl_rc EQUAL 0 AND kw_ossl_m MATCHES "MODULESDIR: \"([^\"]+)\"")
      set(KW_OSSL_MODULESDIR_FOUND ${CMAKE_MATCH_1})
    endif()
  endif()
  if(NOT KW_OSSL_MODULESDIR_FOUND)
    pkg_get_variable(KW_OSSL_MODULESDIR_FOUND libcrypto modulesdir)
  endif()
  if(NOT KW_OSSL_MODULESDIR_FOUND)
    set(KW_OSSL_MODULESDIR_FOUND ${CMAKE_INSTALL_FULL_LIBDIR}/ossl-modules)
  endif()
  set(KW_OSSL_MODULESDIR ${KW_OSSL_MODULESDIR_FOUND} CACHE PATH
      "Where keyward.so is installed (default: openssl version -m)" FORCE)
endif()
message(STATUS "keyward.so installs into OpenSSL's module directory ${KW_OSSL_MODULESDIR}")

# systemd units: /lib/systemd/system for prefix /usr on Debian 12 (where systemd looks and
# dh_installsystemd expects them), PREFIX/lib/systemd/system otherwise.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(kw_unitdir_default /lib/systemd/system)
else()
  set(kw_unitdir_default ${CMAKE_INSTALL_PREFIX}/lib/systemd/system)
endif()
set(KW_SYSTEMD_UNITDIR ${kw_unitdir_default} CACHE PATH "Where the systemd units are installed")

install(TARGETS keyward-keyserver keyward-proxy keyward-cli
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS keyward_provider LIBRARY DESTINATION ${KW_OSSL_MODULESDIR})
install(TARGETS keyward_shared
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} NAMELINK_SKIP COMPONENT runtime)
install(TARGETS keyward_shared
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} NAMELINK_ONLY COMPONENT dev)

# Public headers: the client API and what it needs (protocol.h: messages; error.h: KW_E* codes).
# tls.h, log.h, stub.h, keyid.h, version.h are the tree's own and stay internal.
install(FILES include/keyward/client.h include/keyward/protocol.h include/keyward/error.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/keyward COMPONENT dev)
if(IS_ABSOLUTE ${CMAKE_INSTALL_LIBDIR})
  set(KW_PC_LIBDIR ${CMAKE_INSTALL_LIBDIR})
else()
  set(KW_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE ${CMAKE_INSTALL_INCLUDEDIR})
  set(KW_PC_INCLUDEDIR ${CMAKE_INSTALL_INCLUDEDIR})
else()
  set(KW_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file(src/client/keyward.pc.in ${CMAKE_BINARY_DIR}/keyward.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/keyward.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig
        COMPONENT dev)

install(FILES man/keyward.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES man/keyward-keyserver.8 man/keyward-proxy.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
install(FILES man/keyward.so.5 DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)

install(FILES examples/keyserver.yaml examples/proxy.yaml examples/openssl-keyward.cnf
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
install(PROGRAMS scripts/make-pki.sh scripts/demo.sh
        DESTINATION ${CMAKE_INSTALL_DATADIR}/keyward)

# The units of examples/ with ExecStart= pointing at this installation's programs.
foreach(unit keyward-keyserver.service keyward-proxy.service)
  file(READ examples/${unit} kw_unit)
  string(REPLACE "/usr/local/bin/" "${CMAKE_INSTALL_FULL_BINDIR}/" kw_unit "${kw_unit}")
  file(WRITE ${CMAKE_BINARY_DIR}/systemd/${unit} "${kw_unit}")
  install(FILES ${CMAKE_BINARY_DIR}/systemd/${unit} DESTINATION ${KW_SYSTEMD_UNITDIR})
endforeach()
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS examples/keyward-keyserver.service
             examples/keyward-proxy.service)
