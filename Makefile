# lkeras -- the Keras API for Lua 5.4 on a C engine.
#   make            build the library, the Lua module and the lkeras host
#   make test       install missing packages, build, run every test
#   make demo       install missing packages, build, train on Fashion-MNIST
#   make bench      benchmarks (JSON lines), with the PyTorch peer side by side
#   make install PREFIX=/usr/local [DESTDIR=...]
#   make HDF5=0 IMAGES=0   a light build: no libhdf5 (a .h5 path then fails with
#                          "built without HDF5"), no libpng/libjpeg (image files
#                          likewise); the core needs Lua, OpenBLAS, zlib and libc

PREFIX   ?= /usr/local
CC       ?= cc
LUA_INC  ?= /usr/include/lua5.4
HDF5_INC ?= /usr/include/hdf5/serial
OPT      ?= -O2 -ftree-vectorize -fno-math-errno
CFLAGS   ?= $(OPT) -g
KR_CFLAGS = -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Wall -Wextra -Wno-unused-parameter \
            -fPIC -Isrc -I$(LUA_INC) -I$(HDF5_INC) -Ibuild $(CFLAGS)
HDF5     ?= 1
IMAGES   ?= 1
H5_LIBS   = $(if $(filter 0,$(HDF5)),,-lhdf5_serial)
IMG_LIBS  = $(if $(filter 0,$(IMAGES)),,-lpng -ljpeg)
LIBS      = -lopenblas $(H5_LIBS) $(IMG_LIBS) -lz -lm -lpthread -ldl
HOST_LIBS = -llua5.4 -ledit $(LIBS) -ldl

B = build
ENGINE_SRC = $(wildcard src/*.c src/kernels/*.c src/io/*.c src/lua/*.c)
HOST_SRC   = src/lkeras.c src/lkeras_repr.c
ENGINE_SRC := $(filter-out $(HOST_SRC),$(ENGINE_SRC))
# the light build's stand-ins (src/optional/): the same API, a clear error
ifeq ($(HDF5),0)
ENGINE_SRC := $(filter-out src/io/h5.c,$(ENGINE_SRC)) src/optional/h5_none.c
endif
ifeq ($(IMAGES),0)
ENGINE_SRC := $(filter-out src/io/image.c,$(ENGINE_SRC)) src/optional/image_none.c
endif
# the shared library: liblkeras.so -> liblkeras.so.0 (soname) -> liblkeras.so.0.1
SO_MAJOR  = 0
SO_MINOR  = 1
SONAME    = liblkeras.so.$(SO_MAJOR)
LUA_SRC    = $(sort $(wildcard lua/keras/*.lua))
OBJ        = $(patsubst src/%.c,$(B)/obj/%.o,$(ENGINE_SRC)) $(B)/obj/embedded.o
HDRS       = $(wildcard src/*.h src/kernels/*.h src/io/*.h src/lua/*.h)
CTESTS     = $(patsubst tests/c/%.c,$(B)/tests/%,$(wildcard tests/c/test_*.c))

# keras.distributed over MPI: a plugin of its own, built only where mpicc is
# found; keras.so, libkeras.a and lkeras never link libmpi (src/dist.h)
MPICC ?= $(shell command -v mpicc 2>/dev/null)
DIST_PLUGIN = $(if $(MPICC),$(B)/keras_mpi.so)

.PHONY: all test test-c test-lua test-asan demo bench install clean deps examples
all: $(B)/libkeras.a $(B)/keras.so $(B)/lkeras $(B)/liblkeras.so.$(SO_MAJOR).$(SO_MINOR) $(DIST_PLUGIN)

$(B)/keras_mpi.so: src/dist/mpi.c src/dist.h
	@mkdir -p $(B)
	$(MPICC) $(KR_CFLAGS) -shared -o $@ src/dist/mpi.c -lpthread

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
# -z nodelete: lua_close's dlclose must not unmap the code that the kernels'
# pool workers (src/kernels/threadpool.c) may still be spinning in
$(B)/keras.so: $(OBJ)
	$(CC) -shared -Wl,-z,nodelete -o $@ $(OBJ) $(LIBS)

$(B)/lkeras: $(HOST_SRC) $(B)/libkeras.a src/lkeras.h src/lkeras_repr.h
	$(CC) $(KR_CFLAGS) -o $@ $(HOST_SRC) $(B)/libkeras.a $(HOST_LIBS) -Wl,-E

# the library for C hosts (lkeras.h): links Lua itself, unlike keras.so
$(B)/liblkeras.so.$(SO_MAJOR).$(SO_MINOR): $(OBJ)
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,-z,nodelete -o $@ $(OBJ) -llua5.4 $(LIBS)
	ln -sf liblkeras.so.$(SO_MAJOR).$(SO_MINOR) $(B)/$(SONAME)
	ln -sf $(SONAME) $(B)/liblkeras.so

# pkg-config: cc game.c $$(pkg-config --cflags --libs lkeras); written by
# install for its PREFIX (Libs.private: what a static link needs)
define write_pc
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$${prefix}/lib' 'includedir=$${prefix}/include' '' \
	  'Name: lkeras' 'Description: the Keras API for Lua 5.4 on a C engine (lkeras.h)' \
	  'Version: $(SO_MAJOR).$(SO_MINOR)' 'Requires: lua5.4' \
	  'Cflags: -I$${includedir}' 'Libs: -L$${libdir} -llkeras' \
	  'Libs.private: $(LIBS)' > $(1)
endef

$(B)/tests/%: tests/c/%.c $(B)/libkeras.a $(wildcard tests/c/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(KR_CFLAGS) -Itests/c -o $@ $< $(B)/libkeras.a $(HOST_LIBS)

test: deps all $(CTESTS) $(B)/tsan/test_threads $(B)/csv_classify
	@sh scripts/run-tests.sh

# keras.distributed's whole grid under mpirun (make test runs a short one)
.PHONY: test-dist-full
test-dist-full: all
	@LKERAS_DIST_FULL=1 sh tests/dist/run.sh

demo: deps all
	$(B)/lkeras scripts/examples/fashion_mlp.lua

bench: deps all
	@sh scripts/bench/run.sh
	@sh scripts/bench/latency.sh

# the latency section alone (scripts/bench/latency.sh) and its two harnesses
.PHONY: bench-latency
bench-latency: all
	@sh scripts/bench/latency.sh

$(B)/bench/latency: scripts/bench/latency.c $(B)/libkeras.a src/lkeras.h
	@mkdir -p $(dir $@)
	$(CC) $(KR_CFLAGS) -o $@ $< $(B)/libkeras.a -llua5.4 $(LIBS)

TORCH_INC ?= /usr/include/torch/csrc/api/include
$(B)/bench/latency_torch: scripts/bench/latency_torch.cpp
	@mkdir -p $(dir $@)
	$(CXX) -O2 -std=c++17 -I$(TORCH_INC) -o $@ $< -ltorch -ltorch_cpu -lc10

# the command-line classifier (scripts/examples/csv_classify/): a C host of lkeras.h
.PHONY: csv_classify
csv_classify: $(B)/csv_classify
$(B)/csv_classify: scripts/examples/csv_classify/csv_classify.c $(B)/libkeras.a src/lkeras.h
	$(CC) $(KR_CFLAGS) -o $@ $< $(B)/libkeras.a -llua5.4 $(LIBS)

examples: all
	@for f in scripts/examples/*.lua; do echo "== $$f"; $(B)/lkeras $$f || exit 1; done

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include \
	           $(DESTDIR)$(PREFIX)/lib/lua/5.4 $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(B)/lkeras $(DESTDIR)$(PREFIX)/bin/lkeras
	install -m 644 $(B)/libkeras.a $(DESTDIR)$(PREFIX)/lib/libkeras.a
	install -m 644 $(B)/libkeras.a $(DESTDIR)$(PREFIX)/lib/liblkeras.a
	install -m 755 $(B)/liblkeras.so.$(SO_MAJOR).$(SO_MINOR) $(DESTDIR)$(PREFIX)/lib/
	ln -sf liblkeras.so.$(SO_MAJOR).$(SO_MINOR) $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(PREFIX)/lib/liblkeras.so
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig
	$(call write_pc,$(DESTDIR)$(PREFIX)/lib/pkgconfig/lkeras.pc)
	install -m 644 src/lkeras.h $(DESTDIR)$(PREFIX)/include/lkeras.h
	install -m 755 $(B)/keras.so $(DESTDIR)$(PREFIX)/lib/lua/5.4/keras.so
	install -m 644 docs/lkeras.1 $(DESTDIR)$(PREFIX)/share/man/man1/lkeras.1
	if [ -f $(B)/keras_mpi.so ]; then install -d $(DESTDIR)$(PREFIX)/lib/lkeras && \
	  install -m 755 $(B)/keras_mpi.so $(DESTDIR)$(PREFIX)/lib/lkeras/keras_mpi.so; fi

# luarocks make (lkeras-scm-1.rockspec): the module and the host into the rock's folders
.PHONY: rock-install
rock-install: all
	install -d $(INST_LIBDIR) $(INST_BINDIR)
	install -m 755 $(B)/keras.so $(INST_LIBDIR)/keras.so
	install -m 755 $(B)/lkeras $(INST_BINDIR)/lkeras
	if [ -f $(B)/keras_mpi.so ]; then install -m 755 $(B)/keras_mpi.so $(INST_LIBDIR)/keras_mpi.so; fi

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

# ---- the ThreadSanitizer build of tests/c/test_threads.c (run by make test):
# four states on four threads; third-party races only are suppressed, in
# tests/tsan.supp (see there why). clang: GCC instruments the ifunc resolvers
# of target_clones (src/kernels/kernels.h), which run before the TSan runtime
TSAN_CC    ?= clang
TSAN_FLAGS  = -O1 -g -fsanitize=thread -fno-omit-frame-pointer
TSAN_OBJ    = $(patsubst src/%.c,$(B)/tsan/obj/%.o,$(ENGINE_SRC)) $(B)/tsan/obj/embedded.o

.PHONY: tsan
tsan: $(B)/tsan/test_threads

$(B)/tsan/obj/%.o: src/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(TSAN_CC) $(KR_CFLAGS) $(TSAN_FLAGS) -c $< -o $@

$(B)/tsan/obj/embedded.o: $(B)/embedded.c
	@mkdir -p $(dir $@)
	$(TSAN_CC) $(KR_CFLAGS) $(TSAN_FLAGS) -c $< -o $@

$(B)/tsan/test_threads: tests/c/test_threads.c $(TSAN_OBJ) $(wildcard tests/c/*.h)
	@mkdir -p $(dir $@)
	$(TSAN_CC) $(KR_CFLAGS) $(TSAN_FLAGS) -Itests/c -o $@ $< $(TSAN_OBJ) $(HOST_LIBS)

# ---- fuzzing the native model-file loader (libFuzzer, clang) ----
#   make fuzz-model-file         fuzz until stopped (FUZZ_SECONDS=n: stop after n s)
#   make fuzz                    this, fuzz-h5 and fuzz-json (below) side by side
#   make test                    includes a bounded run (LKERAS_FUZZ_SECONDS, 45 s),
#                                counted as one test: build/tests/test_zz_fuzz_model_file
# Seeds are real saved models in tests/fuzz/corpus/; new inputs found go to
# build/fuzz/corpus (make fuzz) or a scratch copy (the bounded run), crashes
# to build/fuzz/artifacts/.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 0
FUZZ_FLAGS    = -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Isrc -g -O1 \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_SRC      = tests/fuzz/fuzz_model_file.c src/io/model_file.c src/io/atomic.c src/ctx.c src/blas.c src/tensor.c

.PHONY: fuzz
$(B)/fuzz/fuzz_model_file: $(FUZZ_SRC) src/io/model_file.h src/io/atomic.h src/kr.h src/ctx_impl.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $(FUZZ_SRC) -lopenblas -lz -lm -lpthread -ldl

# make fuzz: every fuzzer at once (model file, HDF5, JSON config)
fuzz:
	$(MAKE) -j3 fuzz-model-file fuzz-h5 fuzz-json fuzz-npz fuzz-image

.PHONY: fuzz-model-file
fuzz-model-file: $(B)/fuzz/fuzz_model_file
	@mkdir -p $(B)/fuzz/corpus $(B)/fuzz/artifacts
	cp tests/fuzz/corpus/* $(B)/fuzz/corpus/
	$(B)/fuzz/fuzz_model_file -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=10 -print_final_stats=1 \
	    -artifact_prefix=$(B)/fuzz/artifacts/ $(B)/fuzz/corpus

# ---- fuzzing the HDF5 weight reader (libFuzzer, clang) ----
#   make fuzz-h5                 fuzz until stopped (FUZZ_SECONDS=n: stop after n s)
#   make test                    a bounded run (LKERAS_FUZZ_H5_SECONDS, 15 s), counted
#                                as one test: build/tests/test_zz_fuzz_h5
# A crash whose faulting frame is inside libhdf5 itself is reported apart from
# ours by the bounded run (tests/fuzz/bounded.sh: a "skipped" line naming it,
# the input kept as build/fuzz/artifacts/libhdf5-*); see docs/reliability.md.
# Seeds are real files saved by lkeras in tests/fuzz/corpus_h5/. libFuzzer's
# leak checks are off (-detect_leaks=0, and LSan at exit): libhdf5 1.10 leaks its metadata cache
# entries when a corrupt object header fails to load (H5Gopen2 -> H5O_protect),
# which is not ours to fix; h5.c's own allocations are still checked (the
# target traps when the context's memory in use is not back to zero).
FUZZ_H5_SRC = tests/fuzz/fuzz_h5.c src/io/h5.c src/io/atomic.c src/ctx.c src/blas.c src/tensor.c

$(B)/fuzz/fuzz_h5: $(FUZZ_H5_SRC) src/io/model_file.h src/io/atomic.h src/kr.h src/ctx_impl.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -I$(HDF5_INC) -o $@ $(FUZZ_H5_SRC) -lhdf5_serial -lopenblas -lz -lm -lpthread -ldl

.PHONY: fuzz-h5
fuzz-h5: $(B)/fuzz/fuzz_h5
	@mkdir -p $(B)/fuzz/corpus_h5 $(B)/fuzz/artifacts
	cp tests/fuzz/corpus_h5/* $(B)/fuzz/corpus_h5/
	-ASAN_OPTIONS=detect_leaks=0 $(B)/fuzz/fuzz_h5 -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=10 -print_final_stats=1 -detect_leaks=0 \
	    -fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1 \
	    -artifact_prefix=$(B)/fuzz/artifacts/ $(B)/fuzz/corpus_h5
	sh tests/fuzz/classify.sh $(B)/fuzz/fuzz_h5

# the crashes kept in build/fuzz/artifacts, sorted: inside libhdf5 itself, or
# ours (after a campaign stopped by hand; fuzz-h5 runs it when FUZZ_SECONDS ends)
.PHONY: fuzz-classify
fuzz-classify: $(B)/fuzz/fuzz_h5
	sh tests/fuzz/classify.sh $(B)/fuzz/fuzz_h5

$(B)/tests/test_zz_fuzz_h5: tests/fuzz/bounded.sh
	@mkdir -p $(dir $@)
	printf '#!/bin/sh\nLKERAS_FUZZ_SECONDS=$${LKERAS_FUZZ_H5_SECONDS:-15} LKERAS_FUZZ_FLAGS=-detect_leaks=0 ASAN_OPTIONS=detect_leaks=0 exec sh tests/fuzz/bounded.sh $(B)/fuzz/fuzz_h5 tests/fuzz/corpus_h5\n' > $@
	chmod +x $@

test: $(B)/tests/test_zz_fuzz_h5

# ---- fuzzing the model-config loader (keras.models.model_from_json) ----
#   make fuzz-json               tests/fuzz/fuzz_json.lua under the ASan host
#                                (FUZZ_SECONDS=n: stop after n s; 0: until stopped)
#   make test                    a bounded run (LKERAS_FUZZ_JSON_SECONDS, 15 s),
#                                counted as one test: build/tests/test_zz_fuzz_json
.PHONY: fuzz-json
fuzz-json: $(B)/asan/lkeras
	@mkdir -p $(B)/fuzz
	ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 \
	    $(B)/asan/lkeras tests/fuzz/fuzz_json.lua $(FUZZ_SECONDS)

$(B)/tests/test_zz_fuzz_json: tests/fuzz/bounded_json.sh
	@mkdir -p $(dir $@)
	printf '#!/bin/sh\nexec sh tests/fuzz/bounded_json.sh\n' > $@
	chmod +x $@

test: $(B)/tests/test_zz_fuzz_json

# (the wrapper builds the fuzzer itself, so that a machine without clang's
# libFuzzer reports one failed test instead of stopping the build)
$(B)/tests/test_zz_fuzz_model_file: tests/fuzz/bounded.sh
	@mkdir -p $(dir $@)
	printf '#!/bin/sh\nexec sh tests/fuzz/bounded.sh $(B)/fuzz/fuzz_model_file\n' > $@
	chmod +x $@

test: $(B)/tests/test_zz_fuzz_model_file

# ---- fuzzing the .npz and pickle readers (libFuzzer, clang) ----
#   make fuzz-npz                fuzz until stopped (FUZZ_SECONDS=n: stop after n s)
#   make test                    a bounded run (LKERAS_FUZZ_NPZ_SECONDS, 15 s), counted
#                                as one test: build/tests/test_zz_fuzz_npz
# Seeds in tests/fuzz/corpus_npz/: the dataset fixtures' .npz files and bare
# pickles (first byte 'P', see tests/fuzz/fuzz_npz.c).
FUZZ_NPZ_SRC = tests/fuzz/fuzz_npz.c src/io/npz.c src/io/npy.c src/io/pickle.c src/io/atomic.c src/ctx.c \
               src/blas.c src/tensor.c

$(B)/fuzz/fuzz_npz: $(FUZZ_NPZ_SRC) src/io/io.h src/io/atomic.h src/kr.h src/ctx_impl.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $(FUZZ_NPZ_SRC) -lopenblas -lz -lm -lpthread -ldl

.PHONY: fuzz-npz
fuzz-npz: $(B)/fuzz/fuzz_npz
	@mkdir -p $(B)/fuzz/corpus_npz $(B)/fuzz/artifacts
	cp tests/fuzz/corpus_npz/* $(B)/fuzz/corpus_npz/
	$(B)/fuzz/fuzz_npz -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=10 -print_final_stats=1 \
	    -artifact_prefix=$(B)/fuzz/artifacts/ $(B)/fuzz/corpus_npz

$(B)/tests/test_zz_fuzz_npz: tests/fuzz/bounded.sh
	@mkdir -p $(dir $@)
	printf '#!/bin/sh\nLKERAS_FUZZ_SECONDS=$${LKERAS_FUZZ_NPZ_SECONDS:-15} exec sh tests/fuzz/bounded.sh $(B)/fuzz/fuzz_npz tests/fuzz/corpus_npz\n' > $@
	chmod +x $@

test: $(B)/tests/test_zz_fuzz_npz

# ---- fuzzing the PNG and JPEG decoders (libFuzzer, clang) ----
#   make fuzz-image              fuzz until stopped (FUZZ_SECONDS=n: stop after n s)
#   make test                    a bounded run (LKERAS_FUZZ_IMAGE_SECONDS, 15 s), counted
#                                as one test: build/tests/test_zz_fuzz_image
# Seeds in tests/fuzz/corpus_image/: the image fixtures. Built with
# KR_IMAGE_MAX_PIXELS = 2^20 (see tests/fuzz/fuzz_image.c).
FUZZ_IMAGE_SRC = tests/fuzz/fuzz_image.c src/io/image.c src/ctx.c src/blas.c src/tensor.c

$(B)/fuzz/fuzz_image: $(FUZZ_IMAGE_SRC) src/image.h src/kr.h src/ctx_impl.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) '-DKR_IMAGE_MAX_PIXELS=((int64_t)1 << 20)' -o $@ $(FUZZ_IMAGE_SRC) \
	    -lpng -ljpeg -lopenblas -lz -lm -lpthread -ldl

.PHONY: fuzz-image
fuzz-image: $(B)/fuzz/fuzz_image
	@mkdir -p $(B)/fuzz/corpus_image $(B)/fuzz/artifacts
	cp tests/fuzz/corpus_image/* $(B)/fuzz/corpus_image/
	$(B)/fuzz/fuzz_image -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=10 -print_final_stats=1 \
	    -artifact_prefix=$(B)/fuzz/artifacts/ $(B)/fuzz/corpus_image

$(B)/tests/test_zz_fuzz_image: tests/fuzz/bounded.sh
	@mkdir -p $(dir $@)
	printf '#!/bin/sh\nLKERAS_FUZZ_SECONDS=$${LKERAS_FUZZ_IMAGE_SECONDS:-15} exec sh tests/fuzz/bounded.sh $(B)/fuzz/fuzz_image tests/fuzz/corpus_image\n' > $@
	chmod +x $@

test: $(B)/tests/test_zz_fuzz_image

# ---- the game that learns (scripts/examples/game/): CartPole in C, a DQN agent in Lua ----
#   make game                    the whole run with the documented seed: stops once solved
#                                (mean return >= 195 over 100 episodes), at most 600 episodes;
#                                the learning curve goes to build/game/cartpole_dqn.png
#   make test                    its quick mode, counted as one test: build/tests/test_zz_game
GAME_SRC = $(wildcard scripts/examples/game/*.c)

$(B)/game/cartpole: $(GAME_SRC) $(wildcard scripts/examples/game/*.h) $(B)/libkeras.a src/lkeras.h
	@mkdir -p $(dir $@)
	$(CC) $(KR_CFLAGS) -o $@ $(GAME_SRC) $(B)/libkeras.a $(HOST_LIBS)

.PHONY: game
game: deps all $(B)/game/cartpole
	$(B)/game/cartpole --plot $(B)/game/cartpole_dqn.png scripts/examples/game/agent.lua

$(B)/tests/test_zz_game: $(B)/game/cartpole
	@mkdir -p $(dir $@)
	printf '#!/bin/sh\nexec $(B)/game/cartpole --quick scripts/examples/game/agent.lua\n' > $@
	chmod +x $@

test: $(B)/tests/test_zz_game
