"""Model formats the core runs without torch: the contract of an exported quality network (:mod:`.onnx_contract`),
the base of quality methods that are such a network (:mod:`.quality_net`), and ONNX parameter/FLOP counting for
the cost tables (:mod:`.onnx_info`)."""
