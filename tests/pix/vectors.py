"""The Central Bank manual's BR Code examples (CRCs recomputed), shared by the Pix tests."""

STATIC_VECTOR = (
    "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-426655440000"
    "5204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***63041D3D"
)
DYNAMIC_VECTOR = (
    "00020101021226700014br.gov.bcb.pix2548pix.example.com/8b3da2f39a4140d1a91abd93113bd441"
    "5204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***630464E4"
)

# Pix Automático composite QR codes: the `dadosQR.pixCopiaECola` examples of the BCB's API Pix
# 2.9.0 (bacen/pix-api openapi.yaml, components/examples recResponse3, recResponse6 and
# recResponse7; a copy is in /work/shared/reference). CRCs recomputed: all three match.
RECURRENCE_VECTOR = (  # JORNADA_2: 26 holds only the GUI, 80 the recurrence location
    "00020126180014br.gov.bcb.pix5204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***"
    "80800014br.gov.bcb.pix2558pix.example.com/qr/v2/rec/2353c790eefb11eaadc10242ac120002"
    "630462C9"
)
COMPOSITE_COB_VECTOR = (  # JORNADA_3: an immediate charge (cob) location plus the recurrence
    "00020101021226760014br.gov.bcb.pix2554pix.example.com/qr/v2/8b3da2f39a4140d1a91abd93113bd441"
    "5204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***"
    "80800014br.gov.bcb.pix2558pix.example.com/qr/v2/rec/94ed2badcbc04c15b0bb7fa353194890"
    "63047741"
)
COMPOSITE_COBV_VECTOR = (  # JORNADA_4: a due-date charge (cobv) location plus the recurrence
    "00020101021226810014br.gov.bcb.pix2559"
    "pix.example.com/qr/v2/cobv/1e6c54d3ec9449b7a7fc53b6b0f998e7"
    "5204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***"
    "80800014br.gov.bcb.pix2558pix.example.com/qr/v2/rec/3ffa640fa4f14080adccb949fa2dc0d0"
    "6304A441"
)
