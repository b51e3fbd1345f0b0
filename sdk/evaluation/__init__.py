"""mAP evaluation: the COCO metric (checked against pycocotools) and the official YOLOv7 test.py metric."""
