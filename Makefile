# lkeras -- the Keras API for Lua 5.4 on a C engine.
#   make            build the library, the Lua module and the lkeras host
#   make test       install missing packages, build, run every test
#   make demo       install missing packages, build, train on Fashion-MNIST
#   make bench      benchmarks (JSON lines), with the PyTorch peer side by side
#   make install PREFIX=/usr/local

PREFIX   ?= /usr/local
CC       ?= cc
LUA_INC  ?= /usr/include/lua5.4
HDF5_INC ?= /usr/include/hdf5/serial
OPT      ?= -O2 -ftree-vectorize -fno-math-errno
CFLAGS   ?= $(OPT) -g
KR_CFLAGS = -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Wall -Wextra -Wno-unused-parameter \
            -fPIC -Isrc -I$(LUA_INC) -I$(HDF5_INC) -Ibuild $(CFLAGS)
LIBS      = -lopenblas -lhdf5_serial -lz -lm -lpthread -ldl
HOST_LIBS = -llua5.4 -ledit $(LIBS) -ldl

B = build
ENGINE_SRC = $(wildcard src/*.c src/kernels/*.c src/io/*.c src/lua/*.c)
HOST_SRC   = src/lkeras.c src/lkeras_repr.c
ENGINE_SRC := $(filter-out $(HOST_SRC),$(ENGINE_SRC))
LUA_SRC    = $(sort $(wildcard lua/keras/*.lua))
OBJ        = $(patsubst src/%.c,$(B)/obj/%.o,$(ENGINE_SRC)) $(B)/obj/embedded.o
HDRS       = $(wildcard src/*.h src/kernels/*.h src/io/*.h src/lua/*.h)
CTESTS     = $(patsubst tests/c/%.c,$(B)/tests/%,$(wildcard tests/c/test_*.c))

.PHONY: all test test-c test-lua test-asan demo bench install clean deps examples
all: $(B)/libkeras.a $(B)/keras.so $(B)/lkeras

deps:
	@sh scripts/install-deps.sh

$(B)/obj/%.o: src/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(KR_CFLAGS) -c $< -o $@

$(B)/embedded.c: $(LUA_SRC) scripts/embed.lua
	@mkdir -p $(B)
	lua5.4 scripts/embed.lua $@ $(LUA_SRC)

$(B)/obj/embedded.o: $(B)/embedded.c
	@mkdir -p $(dir $@)
	$(CC) $(KR_CFLAGS) -c $< -o $@

$(B)/libkeras.a: $(OBJ)
	rm -f $@ && ar rcs $@ $(OBJ)

# the module for stock lua5.4: require "keras" finds build/keras.so on package.cpath
$(B)/keras.so: $(OBJ)
	$(CC) -shared -o $@ $(OBJ) $(LIBS)

$(B)/lkeras: $(HOST_SRC) $(B)/libkeras.a src/lkeras.h src/lkeras_repr.h
	$(CC) $(KR_CFLAGS) -o $@ $(HOST_SRC) $(B)/libkeras.a $(HOST_LIBS) -Wl,-E

$(B)/tests/%: tests/c/%.c $(B)/libkeras.a $(wildcard tests/c/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(KR_CFLAGS) -Itests/c -o $@ $< $(B)/libkeras.a $(HOST_LIBS)

test: deps all $(CTESTS)
	@sh scripts/run-tests.sh

demo: deps all
	$(B)/lkeras scripts/examples/fashion_mlp.lua

bench: deps all
	@sh scripts/bench/run.sh

examples: all
	@for f in scripts/examples/*.lua; do echo "== $$f"; $(B)/lkeras $$f || exit 1; done

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include \
	           $(DESTDIR)$(PREFIX)/lib/lua/5.4
	install -m 755 $(B)/lkeras $(DESTDIR)$(PREFIX)/bin/lkeras
	install -m 644 $(B)/libkeras.a $(DESTDIR)$(PREFIX)/lib/libkeras.a
	install -m 644 src/lkeras.h $(DESTDIR)$(PREFIX)/include/lkeras.h
	install -m 755 $(B)/keras.so $(DESTDIR)$(PREFIX)/lib/lua/5.4/keras.so

clean:
	rm -rf $(B)

# ---- the sanitizer build: the engine, the C tests and lkeras with ASan + UBSan
ASAN_FLAGS = -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -DKR_DEBUG
ASAN_OBJ   = $(patsubst src/%.c,$(B)/asan/obj/%.o,$(ENGINE_SRC)) $(B)/asan/obj/embedded.o
ASAN_TESTS = $(patsubst tests/c/%.c,$(B)/asan/tests/%,$(wildcard tests/c/test_*.c))

.PHONY: asan
asan: $(B)/asan/lkeras $(ASAN_TESTS)

$(B)/asan/obj/%.o: src/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(KR_CFLAGS) $(ASAN_FLAGS) -c $< -o $@

$(B)/asan/obj/embedded.o: $(B)/embedded.c
	@mkdir -p $(dir $@)
	$(CC) $(KR_CFLAGS) $(ASAN_FLAGS) -c $< -o $@

$(B)/asan/libkeras.a: $(ASAN_OBJ)
	rm -f $@ && ar rcs $@ $(ASAN_OBJ)

$(B)/asan/lkeras: $(HOST_SRC) $(B)/asan/libkeras.a src/lkeras.h src/lkeras_repr.h
	$(CC) $(KR_CFLAGS) $(ASAN_FLAGS) -o $@ $(HOST_SRC) $(B)/asan/libkeras.a $(HOST_LIBS) -Wl,-E

$(B)/asan/tests/%: tests/c/%.c $(B)/asan/libkeras.a $(wildcard tests/c/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(KR_CFLAGS) $(ASAN_FLAGS) -Itests/c -o $@ $< $(B)/asan/libkeras.a $(HOST_LIBS)

# ---- fuzzing the native model-file loader (libFuzzer, clang) ----
#   make fuzz                    fuzz until stopped (FUZZ_SECONDS=n: stop after n s)
#   make test                    includes a bounded run (LKERAS_FUZZ_SECONDS, 45 s),
#                                counted as one test: build/tests/test_zz_fuzz_model_file
# Seeds are real saved models in tests/fuzz/corpus/; new inputs found go to
# build/fuzz/corpus (make fuzz) or a scratch copy (the bounded run), crashes
# to build/fuzz/artifacts/.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 0
FUZZ_FLAGS    = -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Isrc -g -O1 \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_SRC      = tests/fuzz/fuzz_model_file.c src/io/model_file.c src/ctx.c src/blas.c src/tensor.c

.PHONY: fuzz
$(B)/fuzz/fuzz_model_file: $(FUZZ_SRC) src/io/model_file.h src/kr.h src/ctx_impl.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $(FUZZ_SRC) -lopenblas -lz -lm -lpthread -ldl

fuzz: $(B)/fuzz/fuzz_model_file
	@mkdir -p $(B)/fuzz/corpus $(B)/fuzz/artifacts
	cp tests/fuzz/corpus/* $(B)/fuzz/corpus/
	$(B)/fuzz/fuzz_model_file -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=10 -print_final_stats=1 \
	    -artifact_prefix=$(B)/fuzz/artifacts/ $(B)/fuzz/corpus

# (the wrapper builds the fuzzer itself, so that a machine without clang's
# libFuzzer reports one failed test instead of stopping the build)
$(B)/tests/test_zz_fuzz_model_file: tests/fuzz/bounded.sh
	@mkdir -p $(dir $@)
	printf '#!/bin/sh\nexec sh tests/fuzz/bounded.sh $(B)/fuzz/fuzz_model_file\n' > $@
	chmod +x $@

test: $(B)/tests/test_zz_fuzz_model_file
