"""Images and labelled datasets (YOLO txt, COCO json, Pascal VOC xml)."""
