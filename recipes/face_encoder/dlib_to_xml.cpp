// Writes dlib's 128-d face descriptor network (dlib_face_recognition_resnet_model_v1.dat) as XML.
//
// The network type below is the architecture of dlib's face recognition model (the `anet_type`
// of dlib's dnn_face_recognition_ex.cpp, with `affine` layers in place of batch norm). Only a
// program that declares this exact type can deserialize the .dat file; `net_to_xml` then writes
// every layer's geometry and parameters as text with 9 significant digits (exact for float32).
//
// Build:  g++ -O1 -std=c++14 dlib_to_xml.cpp $(pkg-config --cflags --libs dlib-1) -o dlib_to_xml
// Run:    ./dlib_to_xml MODEL.dat OUT.xml

#include <dlib/dnn.h>

#include <fstream>
#include <iostream>

using namespace dlib;

template <template <int, template <typename> class, int, typename> class block, int N,
          template <typename> class BN, typename SUBNET>
using residual = add_prev1<block<N, BN, 1, tag1<SUBNET>>>;

template <template <int, template <typename> class, int, typename> class block, int N,
          template <typename> class BN, typename SUBNET>
using residual_down = add_prev2<avg_pool<2, 2, 2, 2, skip1<tag2<block<N, BN, 2, tag1<SUBNET>>>>>>;

template <int N, template <typename> class BN, int stride, typename SUBNET>
using block = BN<con<N, 3, 3, 1, 1, relu<BN<con<N, 3, 3, stride, stride, SUBNET>>>>>;

template <int N, typename SUBNET> using ares = relu<residual<block, N, affine, SUBNET>>;
template <int N, typename SUBNET> using ares_down = relu<residual_down<block, N, affine, SUBNET>>;

template <typename SUBNET> using alevel0 = ares_down<256, SUBNET>;
template <typename SUBNET> using alevel1 = ares<256, ares<256, ares_down<256, SUBNET>>>;
template <typename SUBNET> using alevel2 = ares<128, ares<128, ares_down<128, SUBNET>>>;
template <typename SUBNET> using alevel3 = ares<64, ares<64, ares<64, ares_down<64, SUBNET>>>>;
template <typename SUBNET> using alevel4 = ares<32, ares<32, ares<32, SUBNET>>>;

using anet_type = loss_metric<fc_no_bias<128, avg_pool_everything<
    alevel0<alevel1<alevel2<alevel3<alevel4<
    max_pool<3, 3, 2, 2, relu<affine<con<32, 7, 7, 2, 2,
    input_rgb_image_sized<150>>>>>>>>>>>>>;

int main(int argc, char** argv) {
    if (argc != 3) {
        std::cerr << "usage: " << argv[0] << " dlib_face_recognition_resnet_model_v1.dat out.xml\n";
        return 2;
    }
    anet_type net;
    try {
        deserialize(argv[1]) >> net;
    } catch (const std::exception& error) {
        std::cerr << "cannot read " << argv[1] << ": " << error.what() << "\n";
        return 1;
    }
    std::ofstream out(argv[2]);
    if (!out) {
        std::cerr << "cannot write " << argv[2] << "\n";
        return 1;
    }
    net_to_xml(net, out);
    return out.good() ? 0 : 1;
}
