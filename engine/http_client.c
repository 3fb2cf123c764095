/* http_client.c: placeholder while the module is being written (issue 3); the real file replaces
 * it. It registers an empty module so the binary links. */
#include "internal.h"

int luaopen_sluice_http_client(lua_State *L) {
  lua_newtable(L);
  return 1;
}
