// latency_torch.cpp -- the latency benchmark's harness for the peer, libtorch
// (Debian's libtorch-dev, C++ API), the same models and calls as latency.c:
//
//   latency_torch MODEL CALLS RAWFILE
//
// MODEL: mlp (Linear 4-64-64-2, ReLU) or lstm (LSTM(4 -> 32) over one step,
// zero initial state, as Keras's stateless LSTM). Each call copies the input
// from a float buffer into the model and its output back, under NoGradGuard,
// one intra-op thread. Appends one line per call (nanoseconds) to RAWFILE and
// prints a JSON line for the round.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

int main(int argc, char **argv)
{
  if (argc < 4) {
    std::fprintf(stderr, "usage: latency_torch mlp|lstm CALLS RAWFILE\n");
    return 2;
  }
  std::string name = argv[1];
  long calls = std::atol(argv[2]);
  torch::set_num_threads(1);
  torch::manual_seed(1);
  torch::NoGradGuard no_grad;
  bool lstm = name == "lstm";
  torch::nn::Sequential mlp(torch::nn::Linear(4, 64), torch::nn::ReLU(), torch::nn::Linear(64, 64),
                            torch::nn::ReLU(), torch::nn::Linear(64, 2));
  torch::nn::LSTM rnn(torch::nn::LSTMOptions(4, 32).batch_first(true));
  mlp->eval();
  rnn->eval();
  float x[4], y[64];
  for (int i = 0; i < 4; i++) x[i] = 0.1f * (float)(i + 1);
  int nout = lstm ? 32 : 2;
  auto call = [&]() {
    torch::Tensor in = lstm ? torch::from_blob(x, {1, 1, 4}) : torch::from_blob(x, {1, 4});
    torch::Tensor out = lstm ? std::get<0>(rnn->forward(in)) : mlp->forward(in);
    std::memcpy(y, out.contiguous().data_ptr<float>(), sizeof(float) * nout);
  };
  for (int i = 0; i < 1000; i++) call();
  std::vector<float> t(calls);
  for (long i = 0; i < calls; i++) {
    x[0] = (float)(i & 7) * 0.01f;
    auto s = std::chrono::steady_clock::now();
    call();
    t[i] = (float)std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - s).count();
  }
  FILE *raw = std::fopen(argv[3], "a");
  for (long i = 0; raw && i < calls; i++) std::fprintf(raw, "%.0f\n", t[i]);
  if (raw) std::fclose(raw);
  std::sort(t.begin(), t.end());
  std::printf("{\"side\": \"torch\", \"model\": \"%s\", \"calls\": %ld, \"median_us\": %.3f, \"p99_us\": %.3f, "
              "\"p999_us\": %.3f, \"y0\": %.6f}\n",
              name.c_str(), calls, t[calls / 2] / 1e3, t[(long)(calls * 0.99)] / 1e3, t[(long)(calls * 0.999)] / 1e3,
              (double)y[0]);
  return 0;
}
