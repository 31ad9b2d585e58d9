/*
** lkeras_repr.h -- the lkeras host's printer of values (lkeras_repr.c), which
** the REPL (lkeras.c) calls on the results of each expression.
*/
#ifndef LKERAS_REPR_H
#define LKERAS_REPR_H

#include <lua.h>

/* print the arguments as the REPL shows them, tab-separated, on one line */
int lk_host_print_values(lua_State *L);

#endif
